// The running job on the bed, live: the toolpath of its file (faint), what has been burned so
// far (the lines the controller acknowledged) and the head. For any kind of file: it reads the
// G-code that is streamed (one command per line, so a line number is the job's line count).

import * as API from "./api.js";
import { h, setText } from "./dom.js";

// Files with more lines are shown without their toolpath (the head still moves): parsing and
// drawing millions of raster moves would stall the page.
const MAX_LINES = 200000;
const SIZE = 480;

/** Segments of plain GRBL G-code: [x0, y0, x1, y1, burning (0/1), line index] per move. */
function parseMoves(text) {
  const out = [];
  let x = 0, y = 0, s = 0, motion = 0, laser = false;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (!line) continue;
    let nx = x, ny = y, moved = false;
    const words = line.toUpperCase().match(/[A-Z]-?[0-9.]+/g) || [];
    for (const w of words) {
      const v = Number(w.slice(1));
      switch (w[0]) {
        case "G": if (v === 0 || v === 1) motion = v; break;
        case "M": if (v === 3 || v === 4) laser = true; else if (v === 5) laser = false; break;
        case "S": s = v; break;
        case "X": nx = v; moved = true; break;
        case "Y": ny = v; moved = true; break;
        default: break;
      }
    }
    if (moved) {
      out.push(x, y, nx, ny, motion === 1 && laser && s > 0 ? 1 : 0, i + 1);
      x = nx;
      y = ny;
    }
  }
  return new Float64Array(out);
}

export function liveBed() {
  const path = h("canvas", { class: "live-layer", width: SIZE, height: SIZE });
  const burned = h("canvas", { class: "live-layer", width: SIZE, height: SIZE });
  const head = h("canvas", { class: "live-layer", width: SIZE, height: SIZE });
  const caption = h("figcaption", { class: "muted" });
  const frame = h("div", { class: "live-bed", role: "img", "aria-label": "The bed with the job's toolpath and the head" }, path, burned, head);
  const el = h("figure", { class: "live-figure", hidden: true }, frame, caption);
  let fileId = null;
  let moves = null;
  let drawnUpTo = 0;
  let scale = 1;
  let bed = null;

  const toPx = (x, y) => [x * scale, SIZE - y * scale];

  function drawPath() {
    const ctx = path.getContext("2d");
    ctx.clearRect(0, 0, SIZE, SIZE);
    ctx.strokeStyle = "rgba(140, 160, 185, 0.45)";
    ctx.strokeRect(0.5, 0.5, bed.x * scale - 1, bed.y * scale - 1);
    if (!moves) return;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let k = 0; k < moves.length; k += 6) {
      if (!moves[k + 4]) continue;
      const [ax, ay] = toPx(moves[k], moves[k + 1]);
      const [bx, by] = toPx(moves[k + 2], moves[k + 3]);
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
    }
    ctx.stroke();
  }

  function drawBurned(acked) {
    if (!moves) return;
    const ctx = burned.getContext("2d");
    ctx.strokeStyle = "#ffb020";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let k = drawnUpTo;
    for (; k < moves.length && moves[k + 5] <= acked; k += 6) {
      if (!moves[k + 4]) continue;
      const [ax, ay] = toPx(moves[k], moves[k + 1]);
      const [bx, by] = toPx(moves[k + 2], moves[k + 3]);
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
    }
    ctx.stroke();
    drawnUpTo = k;
    frame.dataset.burned = String(drawnUpTo / 6);
  }

  function drawHead(pos) {
    const ctx = head.getContext("2d");
    ctx.clearRect(0, 0, SIZE, SIZE);
    if (!pos) return;
    const [px, py] = toPx(pos.x, pos.y);
    ctx.fillStyle = "#ff4d4d";
    ctx.beginPath();
    ctx.arc(px, py, 4, 0, Math.PI * 2);
    ctx.fill();
    frame.dataset.head = `${pos.x.toFixed(1)},${pos.y.toFixed(1)}`;
  }

  async function load(id, lineCount) {
    moves = null;
    drawnUpTo = 0;
    burned.getContext("2d").clearRect(0, 0, SIZE, SIZE);
    if (lineCount <= MAX_LINES) {
      try {
        const text = await API.text(`/files/${encodeURIComponent(id)}/gcode`);
        if (fileId !== id) return;
        moves = parseMoves(text);
        frame.dataset.segments = String(moves.length / 6);
      } catch {
        moves = null;
      }
    }
    drawPath();
  }

  /** Repaint from the store's state: the job of the machine snapshot and its position. */
  function update(state) {
    const m = state.machine;
    const job = m?.job;
    bed = m?.bed_mm || bed;
    if (!job || !bed) {
      el.hidden = true;
      return;
    }
    el.hidden = false;
    scale = SIZE / Math.max(bed.x, bed.y);
    if (job.file_id !== fileId) {
      fileId = job.file_id;
      setText(caption, "The toolpath appears as the file loads; burned lines turn orange.");
      API.get(`/files/${encodeURIComponent(fileId)}`).then((f) => {
        if (fileId === f.id) {
          setText(caption, `${f.name}: faint, what the job burns; orange, what it burned; red, the head.`);
          load(f.id, f.stats?.lines ?? 0);
        }
      }).catch(() => {});
    }
    drawBurned(job.lines_acked ?? 0);
    drawHead(m.wpos || m.mpos);
  }

  return { el, update };
}
