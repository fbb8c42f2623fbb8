// The dashboard: what the machine is doing, in words; the interlocks; the running job with its
// progress and controls; overrides; and the jog panel. Everything here is painted from the
// store, which the WebSocket feeds, so nothing polls.

import * as API from "../api.js";
import { h, setEnabled, setText, setVar, toast } from "../dom.js";
import { ACTIVE_JOB_STATES, JOB_WORDS, duration, machineWords, mm, pauseReason, pct } from "../format.js";
import { bridgePanel } from "../bridge_card.js";
import { jogPanel } from "../jog.js";
import { live } from "../live.js";
import { liveBed } from "../live_bed.js";
import { can, getState, safetyInputs, subscribe } from "../store.js";

// laserd does not announce its resume delay, so the UI waits API.md's default after the last
// input became safe, and a 409 resume_delay answer (with the seconds left) corrects it.
const DEFAULT_RESUME_DELAY_S = 3;
let resumeNotBefore = 0; // ms since the epoch, from a 409 resume_delay answer
const fileNames = new Map();

/** Seconds left before a resume is allowed. */
function resumeWaitS(state) {
  const now = Date.now();
  if (resumeNotBefore > now) return (resumeNotBefore - now) / 1000;
  const last = Math.max(0, ...Object.values(state.safeSince));
  if (!last) return 0;
  return Math.max(0, (last - now) / 1000 + DEFAULT_RESUME_DELAY_S);
}

function openInterlocks(state) {
  const fromMachine = state.machine?.interlocks?.open;
  if (Array.isArray(fromMachine)) return fromMachine;
  return safetyInputs().filter((i) => !i.safe).map((i) => i.name);
}

function interlockAdvice(names, interlocks) {
  const kinds = new Map(interlocks.map((i) => [i.name, i.kind]));
  return names.map((n) => {
    const kind = kinds.get(n) || n;
    if (kind === "lid") return `Close the ${n === "lid" ? "lid" : n} to continue.`;
    if (kind === "estop") return `Release the emergency stop (${n}) to continue.`;
    if (kind === "coolant") return `Coolant flow (${n}) stopped: check the pump and hoses.`;
    if (kind === "key") return `Turn the key switch (${n}) on to continue.`;
    return `The ${n} interlock is open.`;
  }).join(" ");
}

export function render(view) {
  const stateTitle = h("p", { class: "state-title", id: "machine-state" });
  const stateSentence = h("p", { class: "state-sentence" });
  const stateActions = h("div", { class: "actions" });
  const pos = {};
  const posRow = (label, key) => {
    const cells = ["x", "y", "z"].map((a) => (pos[`${key}${a}`] = h("td", { class: "num" }, "–")));
    return h("tr", {}, h("th", { scope: "row" }, label), cells);
  };
  const connection = h("dd", {}, "–");
  const firmware = h("dd", {}, "–");
  const feedNow = h("dd", {}, "–");
  const powerNow = h("dd", {}, "–");

  const machinePanel = h("section", { class: "panel machine-panel", "aria-labelledby": "machine-h" },
    h("h2", { id: "machine-h" }, "Machine"),
    h("div", { class: "state-box", role: "status", "aria-live": "polite" }, stateTitle, stateSentence),
    stateActions,
    h("table", { class: "pos" },
      h("caption", { class: "sr-only" }, "Position in mm"),
      h("thead", {}, h("tr", {}, h("th", {}, h("span", { class: "sr-only" }, "Position")), h("th", { scope: "col" }, "X"), h("th", { scope: "col" }, "Y"), h("th", { scope: "col" }, "Z"))),
      h("tbody", {}, posRow("Work", "w"), posRow("Machine", "m"))),
    h("dl", { class: "facts" },
      h("dt", {}, "Connection"), connection,
      h("dt", {}, "Firmware"), firmware,
      h("dt", {}, "Feed"), feedNow,
      h("dt", {}, "Laser power"), powerNow),
  );

  const lights = h("ul", { class: "lights" });
  const interlockMsg = h("p", { class: "interlock-msg", role: "alert" });
  const interlockPanel = h("section", { class: "panel interlock-panel", "aria-labelledby": "il-h" },
    h("h2", { id: "il-h" }, "Interlocks"), lights, interlockMsg);

  // ------------------------------------------------------------------ job panel
  const jobTitle = h("p", { class: "job-title" });
  const jobState = h("p", { class: "job-state", role: "status", "aria-live": "polite" });
  const bar = h("div", { class: "bar-fill" });
  const barText = h("span", { class: "bar-text" });
  const progress = h("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", "aria-label": "Job progress" }, bar, barText);
  const elapsed = h("dd", {}, "–");
  const eta = h("dd", {}, "–");
  const estimate = h("dd", {}, "–");
  const lines = h("dd", {}, "–");
  const pauseBtn = h("button", { type: "button", class: "btn" }, "Pause");
  const resumeBtn = h("button", { type: "button", class: "btn btn-primary" }, "Resume");
  const cancelBtn = h("button", { type: "button", class: "btn btn-danger" }, "Cancel job");
  const jobReason = h("p", { class: "reason", "aria-live": "polite" });
  const jobControls = h("div", { class: "actions" }, pauseBtn, resumeBtn, cancelBtn);
  const noJob = h("p", { class: "muted" }, "No job is running. Start one from a ", h("a", { href: "#/projects" }, "project"), ".");
  const bedLive = liveBed();
  const jobBody = h("div", {}, jobTitle, jobState, progress, bedLive.el,
    h("dl", { class: "facts" }, h("dt", {}, "Elapsed"), elapsed, h("dt", {}, "Time left"), eta, h("dt", {}, "Estimated"), estimate, h("dt", {}, "Lines"), lines),
    can.control() ? [jobControls, jobReason] : null);
  const jobPanel = h("section", { class: "panel job-panel", "aria-labelledby": "job-h" }, h("h2", { id: "job-h" }, "Job"), noJob, jobBody);

  const jobAction = (button, verb) => button.addEventListener("click", async () => {
    const job = getState().machine?.job;
    if (!job) return;
    if (verb === "cancel" && !window.confirm("Cancel the job? The laser stops and the job cannot be continued.")) return;
    button.disabled = true;
    try {
      await API.post(`/jobs/${encodeURIComponent(job.id)}/${verb}`);
    } catch (err) {
      if (err.code === "resume_delay" && Number.isFinite(Number(err.details?.seconds_left))) {
        resumeNotBefore = Date.now() + Number(err.details.seconds_left) * 1000;
      }
      toast(err.message, "error");
    } finally {
      paint(getState());
    }
  });
  jobAction(pauseBtn, "pause");
  jobAction(resumeBtn, "resume");
  jobAction(cancelBtn, "cancel");

  // ------------------------------------------------------------------ overrides
  const ovr = {};
  const slider = (key, label) => {
    const input = h("input", { type: "range", id: `ovr-${key}`, name: key, min: "10", max: "200", step: "10", value: "100" });
    const out = h("output", { for: `ovr-${key}`, class: "num" }, "100 %");
    input.addEventListener("input", () => setText(out, `${input.value} %`));
    input.addEventListener("change", () => sendOverride({ [key]: Number(input.value) }, input));
    const reset = h("button", { type: "button", class: "btn btn-small" }, "100 %");
    reset.setAttribute("aria-label", `Reset ${label.toLowerCase()} to 100 %`);
    reset.addEventListener("click", () => {
      input.value = "100";
      setText(out, "100 %");
      sendOverride({ [key]: 100 }, reset);
    });
    ovr[key] = { input, out, reset };
    return h("div", { class: "override" }, h("label", { for: `ovr-${key}` }, label), input, out, reset);
  };
  const rapidGroup = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Rapid override" });
  ovr.rapid = { radios: [] };
  for (const v of [25, 50, 100]) {
    const r = h("input", { type: "radio", name: "rapid", id: `rapid-${v}`, value: String(v), checked: v === 100 });
    r.addEventListener("change", () => sendOverride({ rapid: v }, r));
    ovr.rapid.radios.push(r);
    rapidGroup.append(r, h("label", { for: `rapid-${v}` }, `${v} %`));
  }
  let overrideEditing = 0;
  async function sendOverride(body, control) {
    overrideEditing = Date.now();
    try {
      await API.post("/machine/overrides", body);
    } catch (err) {
      toast(err.message, "error");
    } finally {
      control.focus?.();
    }
  }
  const overrideReason = h("p", { class: "reason" });
  const overridesPanel = can.control()
    ? h("section", { class: "panel overrides-panel", "aria-labelledby": "ovr-h" },
      h("h2", { id: "ovr-h" }, "Overrides"),
      slider("feed", "Feed"), slider("power", "Laser power"),
      h("div", { class: "override" }, h("span", { class: "label" }, "Rapid"), rapidGroup),
      h("p", { class: "muted override-note" }, "Overrides steer the running job only: every job starts at 100 % and returns to 100 % when it ends."),
      overrideReason)
    : null;

  const jog = can.control() ? jogPanel() : null;
  const bridge = bridgePanel();
  const guestNote = can.control() ? null : h("section", { class: "panel notice" },
    h("h2", {}, "Watching only"),
    h("p", {}, "Your account is a guest: you can follow the machine and its jobs, but not move it, upload or start jobs. Ask an admin for a user account."));

  view.append(
    h("h1", { tabindex: "-1", class: "sr-only" }, "Dashboard"),
    h("div", { class: "dash-grid" },
      h("div", { class: "col" }, machinePanel, interlockPanel),
      h("div", { class: "col" }, jobPanel, overridesPanel, bridge.el),
      h("div", { class: "col" }, jog?.el, guestNote),
    ),
  );

  // ------------------------------------------------------------------ painting
  const stateButtons = {
    unlock: h("button", { type: "button", class: "btn btn-primary" }, "Unlock"),
    home: h("button", { type: "button", class: "btn" }, "Home"),
    connect: h("button", { type: "button", class: "btn btn-primary" }, "Connect"),
    reset: h("button", { type: "button", class: "btn" }, "Reset controller"),
  };
  const simple = (b, path, msg) => b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await API.post(path);
      toast(msg, "ok");
    } catch (err) {
      toast(err.message, "error");
    } finally {
      b.disabled = false;
    }
  });
  simple(stateButtons.unlock, "/machine/unlock", "Controller unlocked. Check the position before cutting.");
  simple(stateButtons.home, "/machine/home", "Homing started.");
  simple(stateButtons.connect, "/machine/connect", "Connecting to the controller…");
  simple(stateButtons.reset, "/machine/reset", "Controller reset.");
  let shownActions = "";

  function paintMachine(state) {
    const m = state.machine;
    const words = machineWords(m);
    const stale = live.status !== "live";
    setText(stateTitle, stale && m ? `${words.title} (not live)` : words.title);
    stateTitle.className = `state-title state-${words.key}`;
    let sentence = words.sentence;
    if (words.key === "alarm" && m?.alarm) {
      const why = typeof m.alarm === "object" ? m.alarm.message || `ALARM:${m.alarm.code}` : String(m.alarm);
      sentence = `${why.replace(/\.$/, "")}. Unlock to continue, or home the machine to find its position again.`;
    }
    if (stale) sentence = live.status === "connecting" ? "The live connection to laserd dropped; reconnecting…" : "No live connection to laserd.";
    setText(stateSentence, sentence);

    let actions = "";
    if (can.control() && !stale) {
      if (words.key === "alarm") actions = "unlock,home";
      else if (words.key === "disconnected") actions = "connect";
      else if (words.key === "sleep") actions = "reset";
    }
    if (actions !== shownActions) {
      shownActions = actions;
      stateActions.replaceChildren(...actions.split(",").filter(Boolean).map((a) => stateButtons[a]));
    }
    for (const a of ["x", "y", "z"]) {
      setText(pos[`w${a}`], mm(m?.wpos?.[a], 2));
      setText(pos[`m${a}`], mm(m?.mpos?.[a], 2));
    }
    setText(connection, m ? (m.connected ? `Connected${m.port ? ` on ${m.port}` : ""}` : "Not connected") : "–");
    setText(firmware, m?.firmware || "–");
    setText(feedNow, m?.feed != null && Number.isFinite(Number(m.feed)) ? `${Math.round(m.feed)} mm/min` : "–");
    setText(powerNow, m?.power != null && Number.isFinite(Number(m.power)) ? `S ${Math.round(m.power)}` : "–");
  }

  function paintInterlocks(state) {
    const open = openInterlocks(state);
    const inputs = safetyInputs();
    const list = inputs.length ? inputs : open.map((n) => ({ name: n, safe: false }));
    const items = list.map((i) => {
      const isOpen = open.includes(i.name) || i.safe === false;
      return h("li", { class: isOpen ? "light open" : "light ok" },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "light-name" }, i.name),
        h("span", { class: "light-state" }, isOpen ? (i.kind === "estop" ? "pressed" : "open") : "safe"));
    });
    if (!items.length) items.push(h("li", { class: "muted" }, "No interlocks are configured."));
    const key = items.map((li) => li.textContent + li.className).join("|");
    if (lights.dataset.key !== key) {
      lights.dataset.key = key;
      lights.replaceChildren(...items);
    }
    setText(interlockMsg, open.length ? interlockAdvice(open, state.interlocks) : "");
    interlockMsg.hidden = !open.length;
  }

  async function jobFileName(job) {
    if (job.file_name) return job.file_name;
    if (fileNames.has(job.file_id)) return fileNames.get(job.file_id);
    fileNames.set(job.file_id, `File ${job.file_id}`);
    try {
      const f = await API.get(`/files/${encodeURIComponent(job.file_id)}`);
      fileNames.set(job.file_id, f.name);
      paint(getState());
    } catch {
      /* guests may not see files; keep the id */
    }
    return fileNames.get(job.file_id);
  }

  function paintJob(state) {
    const job = state.machine?.job || state.lastJob;
    const active = Boolean(job);
    noJob.hidden = Boolean(active);
    jobBody.hidden = !active;
    if (!active) return;
    const name = job.file_name || fileNames.get(job.file_id);
    if (!name) jobFileName(job);
    setText(jobTitle, ACTIVE_JOB_STATES.includes(job.state) ? name || `File ${job.file_id}` : `Last job: ${name || `file ${job.file_id}`}`);
    let words = JOB_WORDS[job.state] || job.state;
    if (job.state === "paused" && job.pause_reason) words = `Paused: ${pauseReason(job.pause_reason)}`;
    if (job.state === "waiting_start") words = "Press the start button on the machine.";
    if (job.state === "failed" && job.error) words = `Failed: ${job.error}`;
    setText(jobState, words);
    jobState.className = `job-state job-${job.state}`;
    const value = job.state === "completed" ? 100 : pct(job.progress);
    progress.setAttribute("aria-valuenow", String(value));
    progress.setAttribute("aria-valuetext", `${value} %`);
    setVar(bar, "--progress", `${value}%`);
    setText(barText, `${value.toFixed(value % 1 ? 1 : 0)} %`);
    setText(elapsed, duration(job.elapsed_s));
    setText(eta, ACTIVE_JOB_STATES.includes(job.state) ? duration(job.eta_s) : "–");
    setText(estimate, job.estimated_s !== null && job.estimated_s !== undefined ? `${duration(job.estimated_s)} in all` : "–");
    setText(lines, job.lines_total ? `${job.lines_acked ?? job.lines_sent ?? 0} of ${job.lines_total}` : "–");

    if (!can.control()) return;
    const me = state.user;
    const mine = me.role === "admin" || job.user_id === undefined || job.user_id === me.id;
    const isActive = ACTIVE_JOB_STATES.includes(job.state);
    const notMine = "This job belongs to another person.";
    const open = openInterlocks(state);
    const pauseBlock = !mine ? notMine : job.state !== "running" ? "Only a running job can pause." : "";
    let resumeBlock = "";
    const wait = resumeWaitS(state);
    if (!mine) resumeBlock = notMine;
    else if (job.state !== "paused") resumeBlock = "Only a paused job can resume.";
    else if (open.length) resumeBlock = `Resume is locked: ${interlockAdvice(open, state.interlocks)}`;
    else if (live.status !== "live") resumeBlock = "Waiting for the live connection.";
    else if (wait > 0) resumeBlock = `Resume possible in ${Math.ceil(wait)} s.`;
    const cancelBlock = !mine ? notMine : !isActive ? "The job has finished." : "";
    setEnabled(pauseBtn, !pauseBlock, pauseBlock);
    setEnabled(resumeBtn, !resumeBlock, resumeBlock);
    setEnabled(cancelBtn, !cancelBlock, cancelBlock);
    jobControls.hidden = !isActive;
    setText(jobReason, isActive && job.state === "paused" ? resumeBlock : "");
  }

  function paintOverrides(state) {
    if (!overridesPanel) return;
    const o = state.machine?.overrides;
    const fresh = Date.now() - overrideEditing > 1500;
    if (o && fresh) {
      for (const key of ["feed", "power"]) {
        const { input, out } = ovr[key];
        if (document.activeElement !== input && Number.isFinite(Number(o[key]))) {
          input.value = String(o[key]);
          setText(out, `${o[key]} %`);
        }
      }
      for (const r of ovr.rapid.radios) r.checked = Number(r.value) === Number(o.rapid);
    }
    const disconnected = !state.machine?.connected;
    const job = state.machine?.job;
    const notMine = job && ACTIVE_JOB_STATES.includes(job.state) && state.user.role !== "admin" && job.user_id !== undefined && job.user_id !== state.user.id;
    // The server refuses overrides outside a running or paused job (409 no_job_running).
    const steerable = job && ["running", "paused"].includes(job.state);
    const block = disconnected ? "The controller is disconnected."
      : notMine ? "Another person's job is running."
        : !steerable ? "No job is running: overrides apply to a running job." : "";
    for (const key of ["feed", "power"]) {
      setEnabled(ovr[key].input, !block, block);
      setEnabled(ovr[key].reset, !block, block);
    }
    for (const r of ovr.rapid.radios) setEnabled(r, !block, block);
    setText(overrideReason, block);
  }

  function paint(state) {
    paintMachine(state);
    paintInterlocks(state);
    paintJob(state);
    bedLive.update(state);
    paintOverrides(state);
  }

  // With no job seen in this tab yet, show the newest one from the history (one request).
  if (!getState().lastJob && !getState().machine?.job) {
    API.get("/jobs?limit=1").then((page) => {
      const newest = page.items[0];
      if (newest && !getState().lastJob) {
        getState().lastJob = newest;
        paint(getState());
      }
    }).catch(() => {});
  }
  const unsub = subscribe(paint);
  const offStatus = live.on("status", () => paint(getState()));
  // The resume countdown is a local clock, not a request: it only repaints.
  const tick = setInterval(() => {
    const s = getState();
    if (s.machine?.job?.state === "paused") paintJob(s);
  }, 500);
  return () => {
    unsub();
    offStatus();
    clearInterval(tick);
    jog?.destroy();
    bridge.destroy();
  };
}
