// The bed at scale with a design (or image) on it, placed by hand: drag to move, corner handles
// to resize (aspect kept; Shift stretches freely), a round handle to rotate (Shift snaps to
// 15°), two fingers to pinch and turn, and the keyboard. Pointer Events throughout, so mouse,
// pen and touch take the same path. The project's other ready files are drawn faint.
//
// The server knows the design's source box; the page knows only the placed box (the bounds of
// the turned design, ``stats.design_box``) and the saved placement. From those the view works
// out the design's own size (``width_mm`` × ``height_mm``, before turning) and keeps a model
// {centre, size, angle}; every change is reported as placement numbers, live.

import { h, setText } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const RAD = Math.PI / 180;
const MIN_MM = 1; // a handle never shrinks a side below this

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export function boxOf(stats) {
  return stats?.design_box || stats?.laser_bounds || null;
}

const round1 = (v) => Math.round(v * 10) / 10;

/** An angle in degrees brought into (-180, 180]. */
function normDeg(a) {
  let d = ((a % 360) + 360) % 360;
  if (d > 180) d -= 360;
  return Math.abs(d) < 1e-9 ? 0 : d;
}

/** Bounds (width, height) of a w × h box turned by ``deg``. */
function turnedSize(w, h, deg) {
  const a = Math.abs(Math.cos(deg * RAD));
  const b = Math.abs(Math.sin(deg * RAD));
  return [w * a + h * b, w * b + h * a];
}

/**
 * The design's own placed size from its turned bounds ``bw`` × ``bh`` and the saved placement:
 * the sides the placement gives are taken as they are; the others come from the bounds
 * (bw = w·|cos| + h·|sin|, bh = w·|sin| + h·|cos|), which near 45° need one known side.
 */
export function ownSize(bw, bh, placement) {
  const p = placement || {};
  const deg = p.rotation_deg ?? 0;
  const a = Math.abs(Math.cos(deg * RAD));
  const b = Math.abs(Math.sin(deg * RAD));
  if (p.width_mm && p.height_mm) return [p.width_mm, p.height_mm];
  if (p.width_mm) return [p.width_mm, Math.max(0, a >= b ? (bh - p.width_mm * b) / a : (bw - p.width_mm * a) / b)];
  if (p.height_mm) return [Math.max(0, a >= b ? (bw - p.height_mm * b) / a : (bh - p.height_mm * a) / b), p.height_mm];
  const det = a * a - b * b;
  if (Math.abs(det) > 0.05) {
    return [Math.max(0, (a * bw - b * bh) / det), Math.max(0, (a * bh - b * bw) / det)];
  }
  const side = bw / (a + b); // 45° and no side given: the bounds cannot tell the sides apart
  return [side, side];
}

/**
 * ``onChange(values, gesture)`` gets the placement numbers after each step of a gesture:
 * ``{x_mm, y_mm, width_mm, height_mm, rotation_deg}`` of the model, and which gesture made
 * them ("move", "resize", "stretch", "rotate" or "pinch": resize and rotate). Returns
 * ``{el, follow(values)}``: ``follow`` takes numbers typed in the form and redraws the design
 * where they put it.
 */
export function bedView(file, bed, others, onChange) {
  const box = boxOf(file.stats);
  if (!bed || !box) return null;
  const saved = file.placement || {};
  const th0 = saved.rotation_deg ?? 0;
  const [w0, h0] = ownSize(box.xmax - box.xmin, box.ymax - box.ymin, saved);
  const c0 = { x: (box.xmin + box.xmax) / 2, y: (box.ymin + box.ymax) / 2 };
  let m = { cx: c0.x, cy: c0.y, w: w0, h: h0, th: th0 };

  const pad = Math.max(bed.x, bed.y) / 14; // room for the handles at the bed's edges
  const root = svg("svg", { viewBox: `${-pad} ${-pad} ${bed.x + 2 * pad} ${bed.y + 2 * pad}`, class: "bed-view", role: "img",
    "aria-label": `The bed, ${bed.x} × ${bed.y} mm, with ${file.name} on it` });
  const flip = svg("g", { transform: `translate(0 ${bed.y}) scale(1 -1)` });
  root.append(flip);
  flip.append(svg("rect", { x: 0, y: 0, width: bed.x, height: bed.y, class: "bed" }));
  const step = Math.max(bed.x, bed.y) > 600 ? 100 : 50;
  for (let x = step; x < bed.x; x += step) flip.append(svg("line", { x1: x, y1: 0, x2: x, y2: bed.y, class: "bed-grid" }));
  for (let y = step; y < bed.y; y += step) flip.append(svg("line", { x1: 0, y1: y, x2: bed.x, y2: y, class: "bed-grid" }));
  for (const other of others) {
    const b = boxOf(other.stats);
    if (!b) continue;
    const r = svg("rect", { x: b.xmin, y: b.ymin, width: Math.max(b.xmax - b.xmin, 0.5), height: Math.max(b.ymax - b.ymin, 0.5), class: "bed-other" });
    r.append(svg("title"));
    r.firstChild.textContent = other.name;
    flip.append(r);
  }

  // The design in its own frame (centre at 0, 0, unturned, saved size); the group's transform
  // scales, turns and moves it to the model. What burns is drawn in placed coordinates, so it
  // is first taken back into that frame.
  const group = svg("g", { class: "bed-file", tabindex: 0, role: "button",
    "aria-label": `${file.name}: drag to move, corner handles to resize, the round handle to rotate; keys: arrows move, + and − resize, [ and ] rotate` });
  const inner = svg("g");
  inner.append(svg("rect", { x: -Math.max(w0, 0.5) / 2, y: -Math.max(h0, 0.5) / 2, width: Math.max(w0, 0.5), height: Math.max(h0, 0.5), class: "bed-box" }));
  const burn = file.stats?.laser_bounds;
  if (burn) {
    const back = svg("g", { transform: `rotate(${-th0}) translate(${-c0.x} ${-c0.y})` });
    back.append(svg("rect", { x: burn.xmin, y: burn.ymin, width: Math.max(burn.xmax - burn.xmin, 0.5), height: Math.max(burn.ymax - burn.ymin, 0.5), class: "bed-burn" }));
    inner.append(back);
  }
  group.append(inner);
  flip.append(group);

  const coarse = window.matchMedia?.("(pointer: coarse)").matches;
  const r = Math.max(bed.x, bed.y) / (coarse ? 40 : 70);
  const handles = svg("g", { class: "bed-handles" });
  const stem = svg("line", { class: "bed-stem" });
  handles.append(stem);
  const CORNERS = [[1, 1, "top-right"], [-1, 1, "top-left"], [-1, -1, "bottom-left"], [1, -1, "bottom-right"]];
  const corners = CORNERS.map(([sx, sy, name]) => {
    const c = svg("circle", { r, class: "bed-handle", "data-corner": name });
    c.append(svg("title"));
    c.firstChild.textContent = `Resize from the ${name} corner (Shift: stretch)`;
    handles.append(c);
    return { el: c, sx, sy };
  });
  const turn = svg("circle", { r: r * 1.1, class: "bed-rotate" });
  turn.append(svg("title"));
  turn.firstChild.textContent = "Rotate (Shift: 15° steps)";
  handles.append(turn);
  flip.append(handles);

  const warning = h("p", { class: "bed-warning", role: "status" });

  /** A point of the design's frame (saved size) on the bed under the model. */
  const local = (lx, ly) => {
    const c = Math.cos(m.th * RAD);
    const s = Math.sin(m.th * RAD);
    return { x: m.cx + lx * c - ly * s, y: m.cy + lx * s + ly * c };
  };
  const bounds = () => {
    const [bw, bh] = turnedSize(m.w, m.h, m.th);
    return { xmin: m.cx - bw / 2, ymin: m.cy - bh / 2, xmax: m.cx + bw / 2, ymax: m.cy + bh / 2 };
  };
  /** The extent of what burns under the model (its saved box's corners, carried along). */
  const burnBounds = () => {
    if (!burn) return bounds();
    const sx = w0 > 0 ? m.w / w0 : 1;
    const sy = h0 > 0 ? m.h / h0 : 1;
    const c = Math.cos(-th0 * RAD);
    const s = Math.sin(-th0 * RAD);
    const pts = [[burn.xmin, burn.ymin], [burn.xmax, burn.ymin], [burn.xmax, burn.ymax], [burn.xmin, burn.ymax]].map(([x, y]) => {
      const dx = x - c0.x;
      const dy = y - c0.y;
      return local((dx * c - dy * s) * sx, (dx * s + dy * c) * sy);
    });
    const xs = pts.map((p) => p.x);
    const ys = pts.map((p) => p.y);
    return { xmin: Math.min(...xs), ymin: Math.min(...ys), xmax: Math.max(...xs), ymax: Math.max(...ys) };
  };

  const show = () => {
    const sx = w0 > 0 ? m.w / w0 : 1;
    const sy = h0 > 0 ? m.h / h0 : sx;
    group.setAttribute("transform", `translate(${m.cx} ${m.cy}) rotate(${m.th}) scale(${sx} ${sy})`);
    const hw = Math.max(m.w, 0.5) / 2;
    const hh = Math.max(m.h, 0.5) / 2;
    for (const k of corners) {
      const p = local(k.sx * hw, k.sy * hh);
      k.el.setAttribute("cx", p.x);
      k.el.setAttribute("cy", p.y);
    }
    const top = local(0, hh);
    const knob = local(0, hh + 4 * r);
    stem.setAttribute("x1", top.x);
    stem.setAttribute("y1", top.y);
    stem.setAttribute("x2", knob.x);
    stem.setAttribute("y2", knob.y);
    turn.setAttribute("cx", knob.x);
    turn.setAttribute("cy", knob.y);
    const b = burnBounds();
    const e = 0.01;
    const off = b.xmin < -e || b.ymin < -e || b.xmax > bed.x + e || b.ymax > bed.y + e;
    group.classList.toggle("off-bed", off);
    setText(warning, off
      ? `Off the bed: it would burn from X ${b.xmin.toFixed(1)} to ${b.xmax.toFixed(1)} mm and Y ${b.ymin.toFixed(1)} to ${b.ymax.toFixed(1)} mm; the bed is 0 to ${bed.x} by 0 to ${bed.y} mm. Move or shrink it: the server refuses it otherwise.`
      : "");
  };
  const report = (gesture) => {
    const b = bounds();
    onChange({ x_mm: round1(b.xmin), y_mm: round1(b.ymin), width_mm: round1(m.w), height_mm: round1(m.h), rotation_deg: round1(normDeg(m.th)) }, gesture);
  };

  const toBed = (ev) => {
    const pt = root.createSVGPoint();
    pt.x = ev.clientX;
    pt.y = ev.clientY;
    const p = pt.matrixTransform(flip.getScreenCTM().inverse());
    return { x: p.x, y: p.y };
  };
  const capture = (el, ev) => {
    try {
      el.setPointerCapture(ev.pointerId);
    } catch {
      // a pointer that is already gone: the gesture ends with its pointerup anyway
    }
  };

  // Moving (one pointer on the design) and pinching (two).
  const pointers = new Map();
  let gesture = null;
  const pinchStart = () => {
    const [a, b] = [...pointers.values()];
    return { kind: "pinch", d: Math.hypot(b.x - a.x, b.y - a.y) || 1, ang: Math.atan2(b.y - a.y, b.x - a.x), mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }, m: { ...m } };
  };
  group.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    group.focus({ preventScroll: true });
    capture(group, ev);
    pointers.set(ev.pointerId, toBed(ev));
    if (pointers.size === 2) gesture = pinchStart();
    else if (pointers.size === 1) {
      const p = toBed(ev);
      gesture = { kind: "move", dx: p.x - m.cx, dy: p.y - m.cy };
    }
  });
  group.addEventListener("pointermove", (ev) => {
    if (!gesture || !pointers.has(ev.pointerId)) return;
    const p = toBed(ev);
    pointers.set(ev.pointerId, p);
    if (gesture.kind === "move") {
      m = { ...m, cx: p.x - gesture.dx, cy: p.y - gesture.dy };
      show();
      report("move");
    } else if (gesture.kind === "pinch" && pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const k = Math.max(Math.hypot(b.x - a.x, b.y - a.y) / gesture.d, MIN_MM / Math.max(gesture.m.w, gesture.m.h, MIN_MM));
      const turnDeg = (Math.atan2(b.y - a.y, b.x - a.x) - gesture.ang) / RAD;
      const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      m = { cx: gesture.m.cx + mid.x - gesture.mid.x, cy: gesture.m.cy + mid.y - gesture.mid.y, w: gesture.m.w * k, h: gesture.m.h * k, th: normDeg(gesture.m.th + turnDeg) };
      show();
      report("pinch");
    }
  });
  const release = (ev) => {
    if (!pointers.delete(ev.pointerId)) return;
    if (pointers.size === 1) {
      const p = [...pointers.values()][0];
      gesture = { kind: "move", dx: p.x - m.cx, dy: p.y - m.cy };
    } else if (pointers.size === 0) gesture = null;
  };
  group.addEventListener("pointerup", release);
  group.addEventListener("pointercancel", release);

  // Resizing: the opposite corner stays where it is.
  for (const k of corners) {
    let drag = null;
    k.el.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      ev.stopPropagation();
      capture(k.el, ev);
      drag = { anchor: local(-k.sx * m.w / 2, -k.sy * m.h / 2), m: { ...m } };
    });
    k.el.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const p = toBed(ev);
      const g = drag.m;
      const c = Math.cos(g.th * RAD);
      const s = Math.sin(g.th * RAD);
      const dx = p.x - drag.anchor.x;
      const dy = p.y - drag.anchor.y;
      const u = (dx * c + dy * s) * k.sx; // along the design's own width, towards this corner
      const v = (-dx * s + dy * c) * k.sy;
      let w;
      let hh;
      if (ev.shiftKey) {
        w = g.w > 0 ? Math.max(u, MIN_MM) : 0;
        hh = g.h > 0 ? Math.max(v, MIN_MM) : 0;
      } else {
        const diag = g.w * g.w + g.h * g.h || 1;
        const f = Math.max((u * g.w + v * g.h) / diag, MIN_MM / Math.max(g.w, g.h, MIN_MM));
        w = g.w * f;
        hh = g.h * f;
      }
      const mid = { x: (k.sx * w) / 2, y: (k.sy * hh) / 2 };
      m = { ...g, w, h: hh, cx: drag.anchor.x + mid.x * c - mid.y * s, cy: drag.anchor.y + mid.x * s + mid.y * c };
      show();
      report(ev.shiftKey ? "stretch" : "resize");
    });
    const end = () => { drag = null; };
    k.el.addEventListener("pointerup", end);
    k.el.addEventListener("pointercancel", end);
  }

  // Rotating about the centre.
  let spin = null;
  turn.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    capture(turn, ev);
    const p = toBed(ev);
    spin = { from: Math.atan2(p.y - m.cy, p.x - m.cx) / RAD, th: m.th };
  });
  turn.addEventListener("pointermove", (ev) => {
    if (!spin) return;
    const p = toBed(ev);
    let th = spin.th + Math.atan2(p.y - m.cy, p.x - m.cx) / RAD - spin.from;
    if (ev.shiftKey) th = Math.round(th / 15) * 15;
    m = { ...m, th: normDeg(th) };
    show();
    report("rotate");
  });
  const stop = () => { spin = null; };
  turn.addEventListener("pointerup", stop);
  turn.addEventListener("pointercancel", stop);

  group.addEventListener("keydown", (ev) => {
    const d = ev.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, d], ArrowDown: [0, -d] };
    if (ev.key in moves) {
      m = { ...m, cx: m.cx + moves[ev.key][0], cy: m.cy + moves[ev.key][1] };
      show();
      report("move");
    } else if (ev.key === "+" || ev.key === "=" || ev.key === "-" || ev.key === "_") {
      const f = ev.key === "+" || ev.key === "=" ? 1.01 : 1 / 1.01;
      m = { ...m, w: m.w * f, h: m.h * f };
      show();
      report("resize");
    } else if (["[", "]", "{", "}"].includes(ev.key)) {
      const a = ev.key === "]" || ev.key === "}" ? 1 : -1;
      m = { ...m, th: normDeg(m.th + a * (ev.shiftKey ? 15 : 1)) };
      show();
      report("rotate");
    } else return;
    ev.preventDefault();
  });

  /** Redraw from numbers typed in the form (empty ones keep what the view has). */
  const follow = (v) => {
    const th = v.rotation_deg ?? 0;
    let w = m.w;
    let hh = m.h;
    if (v.width_mm && v.height_mm) [w, hh] = [v.width_mm, v.height_mm];
    else if (v.width_mm) [w, hh] = [v.width_mm, w0 > 0 ? (h0 * v.width_mm) / w0 : h0];
    else if (v.height_mm) [w, hh] = [h0 > 0 ? (w0 * v.height_mm) / h0 : w0, v.height_mm];
    const [bw, bh] = turnedSize(w, hh, th);
    const b = bounds();
    const x = v.x_mm ?? b.xmin;
    const y = v.y_mm ?? b.ymin;
    m = { cx: x + bw / 2, cy: y + bh / 2, w, h: hh, th };
    show();
  };

  show();
  const el = h("figure", { class: "bed-figure" }, root, warning,
    h("figcaption", { class: "muted" }, `Bed ${bed.x} × ${bed.y} mm. Drag the file to move it, its corners to resize it (Shift: stretch) and the round handle to rotate it (Shift: 15° steps); two fingers pinch and turn; keys: arrows, + −, [ ]. Then save.`));
  return { el, follow };
}
