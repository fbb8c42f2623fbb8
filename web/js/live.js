// The one WebSocket that drives every live value on every page. It reconnects by itself with
// a growing, jittered delay (so a room full of phones does not hammer a rebooting Pi in
// lockstep) and says so in the header; pages subscribe to message types and never poll.

import { refresh, token } from "./api.js";

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 5000; // a LAN appliance with a few clients: come back quickly

class Live extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.status = "offline"; // offline | connecting | live
    this.attempt = 0;
    this.timer = null;
    this.wanted = false;
    this.gotMessage = false;
  }

  /** Start (or keep) the connection while a user is signed in. */
  start() {
    this.wanted = true;
    if (!this.ws && !this.timer) this.open();
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "bye");
    }
    this.setStatus("offline");
  }

  /** Reconnect now, e.g. with a new token after a refresh. */
  restart() {
    if (!this.wanted) return;
    this.stop();
    this.start();
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.dispatchEvent(new CustomEvent("status", { detail: status }));
  }

  open() {
    this.timer = null;
    if (this.ws) return; // one socket at a time, whoever asked first
    const current = token();
    if (!current) return;
    this.setStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.ws = ws;
    this.gotMessage = false;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "auth", token: current }));
    });
    ws.addEventListener("message", (e) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg?.type === "machine" && !performance.getEntriesByName("laserd:first-live").length) {
        // User Timing mark: the benchmark (tests/bench/bench_ui.py) reads load → first live status.
        performance.mark("laserd:first-live");
      }
      if (!this.gotMessage) {
        this.gotMessage = true;
        this.attempt = 0;
        this.setStatus("live");
        this.dispatchEvent(new CustomEvent("open"));
      }
      if (msg && typeof msg.type === "string") this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
    });
    ws.addEventListener("close", async (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      if (!this.wanted) return;
      this.setStatus("connecting");
      // An auth failure (policy violation or an app code 4401/4403) usually means the access
      // token expired: renew it before trying again instead of looping on a dead token.
      // 4429 (too many live connections) is no token problem: only the backoff helps.
      if (e.code === 4429) {
        this.schedule();
        return;
      }
      if (e.code === 1008 || (e.code >= 4000 && e.code < 5000) || !this.gotMessage) {
        if (this.attempt > 0 || e.code === 1008 || e.code >= 4000) await refresh();
      }
      this.schedule();
    });
  }

  schedule() {
    if (!this.wanted || this.timer || this.ws) return;
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => this.open(), delay);
  }

  on(type, fn) {
    const handler = (e) => fn(e.detail);
    this.addEventListener(type, handler);
    return () => this.removeEventListener(type, handler);
  }
}

export const live = new Live();

// Back on the network or back on the tab: try at once instead of waiting out the backoff.
function retryNow() {
  if (live.wanted && !live.ws && live.timer) {
    clearTimeout(live.timer);
    live.timer = null;
    live.open();
  }
}
window.addEventListener("online", retryNow);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") retryNow();
});
