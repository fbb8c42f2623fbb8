// The jog panel: step sizes, XY and Z moves, feed, home, unlock, and framing a file's outline
// with the laser off or at a low power. Arrow keys jog while the pad has focus. Used on the
// dashboard and beside a file's preview on its project page.

import * as API from "./api.js";
import { h, setEnabled, setText, toast } from "./dom.js";
import { ACTIVE_JOB_STATES, machineKey } from "./format.js";
import { getState, subscribe } from "./store.js";

const STEPS_MM = [0.1, 1, 10, 50];
let stepMm = 1; // remembered across pages for this tab only
let feedMmMin = 3000;

/** Why motion is impossible right now, or "" when it is allowed. */
export function motionBlock(state) {
  const { user, machine } = state;
  if (!user || !["user", "admin"].includes(user.role)) return "Guests cannot move the machine.";
  const key = machineKey(machine);
  if (key === "disconnected") return "The controller is disconnected.";
  if (key === "unknown") return "Waiting for the machine status.";
  const job = machine?.job;
  if (job && ACTIVE_JOB_STATES.includes(job.state)) {
    return job.user_id !== undefined && job.user_id !== user.id && user.role !== "admin"
      ? "Another person's job is running."
      : job.state === "paused"
        ? "A job is paused; resume or cancel it first."
        : job.state === "waiting_start"
          ? "A job is waiting for the start button."
          : "A job is running; wait for it to finish.";
  }
  if (key === "alarm") return "Alarm: unlock or home first.";
  if (key === "door") return "The door is open.";
  if (!["idle", "jog"].includes(key)) return `The machine is busy (${machine?.state}).`;
  return "";
}

async function act(button, fn, okText = "") {
  button.disabled = true;
  try {
    await fn();
    if (okText) toast(okText, "ok");
  } catch (err) {
    toast(err.message, "error");
  } finally {
    button.disabled = false;
    refreshAll();
  }
}

const instances = new Set();
function refreshAll() {
  for (const paint of instances) paint(getState());
}

/**
 * Build the panel. `fileId` and `fileName` enable the frame controls for that file.
 * Returns {el, destroy}.
 */
export function jogPanel({ fileId = null, fileName = "" } = {}) {
  const stepGroup = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Step size" });
  for (const s of STEPS_MM) {
    const id = `step-${String(s).replace(".", "_")}-${Math.random().toString(36).slice(2, 6)}`;
    const input = h("input", { type: "radio", name: `step-${fileId ?? "dash"}`, id, value: String(s), checked: s === stepMm });
    input.addEventListener("change", () => {
      stepMm = s;
    });
    stepGroup.append(input, h("label", { for: id }, `${s} mm`));
  }
  const feed = h("input", { type: "number", name: "feed", min: "10", max: "20000", step: "10", value: String(feedMmMin), inputmode: "numeric" });
  feed.addEventListener("change", () => {
    const v = Number(feed.value);
    if (v >= 10) feedMmMin = v;
  });

  const moveButtons = [];
  const jogBtn = (label, aria, axes, cls) => {
    const b = h("button", { type: "button", class: `btn jog ${cls}`, "aria-label": aria }, label);
    b.addEventListener("click", () => jog(axes, b));
    moveButtons.push(b);
    return b;
  };
  const jog = (axes, button) => {
    if (motionBlock(getState())) return;
    const body = { feed: Number(feed.value) || feedMmMin, relative: true };
    for (const [axis, sign] of Object.entries(axes)) body[axis] = Math.round(sign * stepMm * 1000) / 1000;
    act(button, () => API.post("/machine/jog", body));
  };

  const pad = h("div", { class: "jog-pad", tabindex: "0", role: "group", "aria-label": "Jog pad. Arrow keys move X and Y, Page Up and Page Down move Z, Escape stops." },
    h("span"), jogBtn("▲", "Y plus", { y: 1 }, "up"), h("span"),
    jogBtn("◀", "X minus", { x: -1 }, "left"), h("span", { class: "jog-centre", "aria-hidden": "true" }, "XY"), jogBtn("▶", "X plus", { x: 1 }, "right"),
    h("span"), jogBtn("▼", "Y minus", { y: -1 }, "down"), h("span"),
  );
  const zCol = h("div", { class: "jog-z", role: "group", "aria-label": "Z axis" },
    jogBtn("Z ▲", "Z up", { z: 1 }, "zup"), jogBtn("Z ▼", "Z down", { z: -1 }, "zdown"));
  const stopBtn = h("button", { type: "button", class: "btn" }, "Stop jog");
  stopBtn.addEventListener("click", () => act(stopBtn, () => API.post("/machine/jog/cancel")));

  const keyMap = { ArrowUp: { y: 1 }, ArrowDown: { y: -1 }, ArrowLeft: { x: -1 }, ArrowRight: { x: 1 }, PageUp: { z: 1 }, PageDown: { z: -1 } };
  pad.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      API.post("/machine/jog/cancel").catch((err) => toast(err.message, "error"));
      return;
    }
    const axes = keyMap[e.key];
    if (!axes || e.repeat) return;
    e.preventDefault();
    jog(axes, pad);
  });
  zCol.addEventListener("keydown", (e) => {
    const axes = { PageUp: { z: 1 }, PageDown: { z: -1 } }[e.key];
    if (axes) {
      e.preventDefault();
      jog(axes, zCol);
    }
  });

  const homeBtn = h("button", { type: "button", class: "btn" }, "Home");
  homeBtn.addEventListener("click", () => act(homeBtn, () => API.post("/machine/home"), "Homing started."));
  const unlockBtn = h("button", { type: "button", class: "btn" }, "Unlock");
  unlockBtn.addEventListener("click", () => act(unlockBtn, () => API.post("/machine/unlock"), "Controller unlocked."));
  const reason = h("p", { class: "reason", "aria-live": "polite" });

  let frameBox = null;
  let frameBtn = null;
  let framePower = null;
  if (fileId !== null) {
    framePower = h("input", { type: "number", name: "power_pct", min: "0", max: "10", step: "0.5", value: "0", inputmode: "decimal" });
    frameBtn = h("button", { type: "button", class: "btn" }, "Frame");
    frameBtn.addEventListener("click", () => {
      const power = Math.min(10, Math.max(0, Number(framePower.value) || 0));
      act(frameBtn, () => API.post("/machine/frame", { file_id: fileId, power_pct: power }), "Tracing the outline.");
    });
    const fid = `frame-power-${fileId}`;
    framePower.id = fid;
    frameBox = h("div", { class: "frame-box" },
      h("p", { class: "muted" }, "Trace the outline of ", h("strong", {}, fileName || "this file"), " to check its place on the material."),
      h("div", { class: "row" },
        h("label", { for: fid }, "Laser power while framing (%)"), framePower, frameBtn),
      h("p", { class: "hint" }, "0 keeps the laser off. A low power (1–5 %) shows a visible dot on most materials; wear eye protection."));
  } else {
    frameBox = h("p", { class: "hint frame-box" }, "To trace a file's outline on the material, open the file on its project page and use Frame.");
  }

  const feedId = `jog-feed-${Math.random().toString(36).slice(2, 7)}`;
  feed.id = feedId;
  const el = h("section", { class: "panel jog-panel", "aria-labelledby": `${feedId}-h` },
    h("h2", { id: `${feedId}-h` }, "Jog"),
    h("div", { class: "jog-grid" },
      h("div", {}, h("p", { class: "label" }, "Step"), stepGroup,
        h("div", { class: "field compact" }, h("label", { for: feedId }, "Feed (mm/min)"), feed)),
      h("div", { class: "jog-moves" }, pad, zCol),
    ),
    h("div", { class: "actions" }, homeBtn, unlockBtn, stopBtn),
    reason,
    frameBox,
  );

  const paint = (state) => {
    const block = motionBlock(state);
    for (const b of moveButtons) setEnabled(b, !block, block);
    setEnabled(stopBtn, !block || machineKey(state.machine) === "jog", block);
    pad.setAttribute("aria-disabled", block ? "true" : "false");
    const key = machineKey(state.machine);
    const isUser = ["user", "admin"].includes(state.user?.role);
    const busyJob = state.machine?.job && ACTIVE_JOB_STATES.includes(state.machine.job.state);
    const homeBlock = !isUser ? "Guests cannot move the machine." : key === "disconnected" ? "The controller is disconnected." : busyJob ? "A job is running." : !["idle", "alarm"].includes(key) ? "Only when idle or in alarm." : "";
    setEnabled(homeBtn, !homeBlock, homeBlock);
    const unlockBlock = !isUser ? "Guests cannot unlock the machine." : key === "disconnected" ? "The controller is disconnected." : key !== "alarm" ? "Only needed in alarm." : "";
    setEnabled(unlockBtn, !unlockBlock, unlockBlock);
    if (frameBtn) setEnabled(frameBtn, !block, block);
    setText(reason, block);
  };
  instances.add(paint);
  const unsub = subscribe(paint);
  return {
    el,
    destroy() {
      instances.delete(paint);
      unsub();
    },
  };
}
