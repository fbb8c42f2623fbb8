// The Bridge card on the dashboard: the GRBL-over-TCP bridge for desktop software (LightBurn),
// the connections waiting for a person to accept them, and the running session, which any
// user may end like a job. Painted from GET /bridge and then from the live "bridge" messages.

import * as API from "./api.js";
import { h, toast } from "./dom.js";
import { duration } from "./format.js";
import { live } from "./live.js";
import { can } from "./store.js";

export function bridgePanel() {
  const body = h("div", { class: "bridge-body" });
  const el = h("section", { class: "panel bridge-panel", "aria-labelledby": "bridge-h" },
    h("h2", { id: "bridge-h" }, "Bridge"), body);
  let last = null;
  let shown = "";

  async function act(path, okText) {
    try {
      paint(await API.post(path));
      toast(okText, "ok");
    } catch (err) {
      toast(err.message, "error");
    }
  }

  function pendingRow(p) {
    const accept = h("button", { type: "button", class: "btn btn-primary btn-small" }, "Accept");
    const reject = h("button", { type: "button", class: "btn btn-small" }, "Reject");
    accept.addEventListener("click", () => act(`/bridge/pending/${p.id}/accept`, `Session with ${p.peer} started.`));
    reject.addEventListener("click", () => act(`/bridge/pending/${p.id}/reject`, `Connection from ${p.peer} rejected.`));
    return h("li", { class: "bridge-pending" },
      h("span", {}, `${p.peer} is waiting`),
      can.control() ? h("span", { class: "actions" }, accept, reject) : null);
  }

  function sessionBlock(s) {
    const end = h("button", { type: "button", class: "btn btn-danger" }, "End session");
    end.addEventListener("click", () => act("/bridge/session/end", "Bridge session ended."));
    const state = s.state === "paused" ? `paused (${s.pause_reason || "hold"})` : s.state;
    return h("div", { class: "bridge-session" },
      h("p", {}, h("strong", {}, `Session with ${s.peer}`), ` — accepted by ${s.accepted_by}`),
      h("dl", { class: "facts" },
        h("dt", {}, "State"), h("dd", { class: "bridge-state" }, s.client_connected ? state : `${state}, client gone`),
        h("dt", {}, "Lines"), h("dd", { class: "bridge-lines" }, String(s.lines)),
        h("dt", {}, "Running for"), h("dd", {}, duration(s.elapsed_s))),
      can.control() ? h("div", { class: "actions" }, end) : null);
  }

  function paint(b) {
    last = b;
    if (!b) return;
    // Repaint only on a real change: a button replaced under the pointer loses its click.
    const sig = JSON.stringify([b.enabled, b.port, b.pending.map((p) => p.id), b.session && { ...b.session, elapsed_s: 0 }]);
    if (sig === shown) return;
    shown = sig;
    if (!b.enabled) {
      body.replaceChildren(h("p", { class: "muted" },
        "Off. Set [bridge] enabled = true in laserd.toml to let LightBurn or another GRBL sender work the machine through laserd."));
      return;
    }
    const host = document.getElementById("lan-host")?.textContent?.split(":")[0] || location.hostname;
    body.replaceChildren(
      h("p", {}, `GRBL over TCP on ${host}, port ${b.port}.`),
      b.session ? sessionBlock(b.session) : h("p", { class: "muted" }, "No session running."),
      b.pending.length
        ? h("ul", { class: "bridge-pending-list" }, b.pending.map(pendingRow))
        : h("p", { class: "muted" }, "No connection waiting."),
    );
  }

  API.get("/bridge").then(paint).catch(() => body.replaceChildren(h("p", { class: "muted" }, "Bridge state unavailable.")));
  const off = live.on("bridge", (msg) => paint(msg?.data || msg));
  return { el, destroy: off, get state() { return last; } };
}
