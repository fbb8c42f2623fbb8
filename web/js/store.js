// App-wide state that several pages show: who is signed in, the last machine status and the
// interlock list. Fed by the WebSocket; pages subscribe and get the current value at once.

import { live } from "./live.js";

const state = {
  user: null,
  machine: null,
  interlocks: [], // [{name, kind, pin, safe, since}]
  lastJob: null, // the newest job seen, kept after it finishes so its result stays on screen
  safeSince: {}, // name -> ms timestamp when it last became safe (for the resume delay)
};
const subs = new Set();

export function getState() {
  return state;
}

export function subscribe(fn) {
  subs.add(fn);
  fn(state);
  return () => subs.delete(fn);
}

export function update(patch) {
  Object.assign(state, patch);
  for (const fn of subs) fn(state);
}

export function role() {
  return state.user?.role || "guest";
}

export const can = {
  /** user and admin may move the machine and run jobs; guests only watch. */
  control: () => ["user", "admin"].includes(role()),
  admin: () => role() === "admin",
};

/** Merge interlock information from any message shape the server sends. */
export function mergeInterlocks(list) {
  const now = Date.now();
  const byName = new Map(state.interlocks.map((i) => [i.name, i]));
  for (const item of list) {
    const old = byName.get(item.name);
    const isStart = (item.kind ?? old?.kind) === "start";
    if (item.safe && (!old || !old.safe) && !isStart) {
      // An edge seen live is timed by this browser's clock (the server's may differ); only
      // the first snapshot uses the server's "since".
      const since = Date.parse(item.since || "");
      state.safeSince[item.name] = old || Number.isNaN(since) ? now : Math.min(since, now);
    }
    byName.set(item.name, { ...old, ...item });
  }
  update({ interlocks: [...byName.values()] });
}

function newer(job) {
  const last = state.lastJob;
  return !last || String(last.id) === String(job.id) || Number(job.id) > Number(last.id);
}

live.on("machine", (msg) => {
  const { type: _type, ...machine } = msg;
  if (machine.job && newer(machine.job)) state.lastJob = machine.job;
  update({ machine });
  const open = machine.interlocks?.open;
  if (Array.isArray(open) && state.interlocks.length) {
    const changed = state.interlocks.filter((i) => i.kind !== "start" && i.safe === open.includes(i.name));
    if (changed.length) mergeInterlocks(changed.map((i) => ({ name: i.name, safe: !open.includes(i.name) })));
  }
});

live.on("interlock", (msg) => {
  const { type: _type, ...data } = msg;
  // On connect the whole list ({interlocks: [...]}), then one input per edge.
  if (Array.isArray(data.interlocks)) mergeInterlocks(data.interlocks);
  else if (data.name) mergeInterlocks([data]);
});

live.on("job", (msg) => {
  const { type: _type, ...job } = msg;
  if (newer(job)) state.lastJob = job;
  const current = state.machine?.job;
  if (state.machine && current && String(current.id) === String(job.id)) {
    update({ machine: { ...state.machine, job } });
  } else {
    update({});
  }
});

/** Interlocks proper: the start button is listed by the server too but is not a safety input. */
export function safetyInputs() {
  return state.interlocks.filter((i) => i.kind !== "start");
}
