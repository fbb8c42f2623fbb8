// Turning API values into words people read at the machine.

/** GRBL state names (any case, with substates like "Hold:0") to a plain sentence. */
const MACHINE_WORDS = {
  idle: ["Ready", "The machine is idle and ready."],
  run: ["Running", "The laser is working."],
  hold: ["Paused", "Motion is on hold."],
  jog: ["Jogging", "The head is moving."],
  alarm: ["Alarm", "The controller stopped in alarm. Home or unlock before anything else."],
  door: ["Door open", "The safety door input is open; motion stopped."],
  check: ["Check mode", "G-code check mode: nothing moves."],
  home: ["Homing", "The machine is finding its home position."],
  sleep: ["Asleep", "The controller is asleep; reset it to wake it."],
  disconnected: ["Disconnected", "laserd has no connection to the controller. Check the USB cable and power."],
  connecting: ["Connecting", "laserd is opening the connection to the controller."],
  unknown: ["Unknown", "The state of the controller is not known yet."],
};

export function machineKey(machine) {
  if (!machine) return "unknown";
  if (machine.connected === false) return "disconnected";
  const raw = String(machine.state || "unknown").toLowerCase().split(":")[0];
  return MACHINE_WORDS[raw] ? raw : "unknown";
}

export function machineWords(machine) {
  const key = machineKey(machine);
  const [title, sentence] = MACHINE_WORDS[key];
  return { key, title, sentence };
}

export const JOB_WORDS = {
  queued: "Queued",
  waiting_start: "Waiting for the start button",
  running: "Running",
  paused: "Paused",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
  interrupted: "Interrupted",
};

export const ACTIVE_JOB_STATES = ["queued", "waiting_start", "running", "paused"];

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "–";
  let s = Math.max(0, Math.round(Number(seconds)));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i && v < 10 ? 1 : 0)} ${units[i]}`;
}

export function mm(v, digits = 1) {
  return v === null || v === undefined || !Number.isFinite(Number(v)) ? "–" : `${Number(v).toFixed(digits)}`;
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function pct(fraction) {
  const v = Math.max(0, Math.min(1, Number(fraction) || 0));
  return Math.round(v * 1000) / 10;
}

/** Size on the bed from file stats bounds. */
export function bedSize(stats) {
  const b = stats?.bounds;
  if (!b) return "–";
  const w = Number(b.xmax) - Number(b.xmin);
  const hgt = Number(b.ymax) - Number(b.ymin);
  if (!Number.isFinite(w) || !Number.isFinite(hgt)) return "–";
  return `${w.toFixed(1)} × ${hgt.toFixed(1)} mm`;
}

/** A short reason for a paused job, e.g. "interlock:lid" -> "the lid interlock opened". */
export function pauseReason(reason) {
  if (!reason) return "";
  const [kind, name] = String(reason).split(":");
  if (kind === "interlock") return `the ${name || "safety"} interlock opened`;
  if (kind === "user") return "paused by a person";
  if (kind === "alarm") return "the controller raised an alarm";
  return String(reason).replaceAll("_", " ");
}
