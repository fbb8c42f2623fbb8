// A file's design settings: the layers of an SVG or DXF design (what each colour does and how)
// and the placement of a design or image on the bed. Saving sends only what changed
// (PATCH /files/{id}); the file is processed again and its preview follows.

import * as API from "./api.js";
import { clearErrors, field, formError, h, setEnabled, setText, setVar, showApiError, toast } from "./dom.js";
import { layerMaterial, loadMaterials } from "./layer_material.js";

const OPERATIONS = [
  ["cut", "Cut"], ["score", "Score"], ["fill", "Fill"], ["image", "Image"], ["off", "Off"],
];

/** A number input with the API's range, so the browser flags a wrong value as it is typed. */
function num(name, value, { min, max, step = "any", label }) {
  return h("input", {
    type: "number", name, value: value ?? "", min, max, step, inputmode: "decimal",
    "aria-label": label, class: "num",
  });
}

function layerRow(layer, materials) {
  const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
  setVar(swatch, "--swatch", layer.color);
  const op = h("select", { name: `op-${layer.id}`, "aria-label": `Operation of ${layer.name || layer.color}` },
    OPERATIONS.map(([v, t]) => h("option", { value: v, selected: layer.operation === v }, t)));
  const label = layer.name || layer.color;
  const controls = {
    operation: op,
    speed_mm_min: num(`speed-${layer.id}`, layer.speed_mm_min, { min: 1, max: 100000, label: `Speed of ${label} (mm/min)` }),
    power_pct: num(`power-${layer.id}`, layer.power_pct, { min: 0, max: 100, label: `Power of ${label} (%)` }),
    passes: num(`passes-${layer.id}`, layer.passes, { min: 1, max: 50, step: 1, label: `Passes of ${label}` }),
    air_assist: h("input", { type: "checkbox", name: `air-${layer.id}`, checked: layer.air_assist, "aria-label": `Air assist for ${label}` }),
    order: num(`order-${layer.id}`, layer.order, { min: -1000, max: 1000, step: 1, label: `Order of ${label}` }),
    kerf_mm: num(`kerf-${layer.id}`, layer.kerf_mm, { min: 0, max: 5, label: `Kerf of ${label} (mm)` }),
    tabs_count: num(`tabs-${layer.id}`, layer.tabs?.count, { min: 0, max: 64, step: 1, label: `Tabs of ${label}` }),
    tabs_width: num(`tabw-${layer.id}`, layer.tabs?.width_mm, { min: 0.01, max: 50, label: `Tab width of ${label} (mm)` }),
    interval: num(`interval-${layer.id}`, layer.fill?.interval_mm, { min: 0.01, max: 10, label: `Line interval of ${label} (mm)` }),
    angle: num(`angle-${layer.id}`, layer.fill?.angle_deg, { min: -360, max: 360, label: `Fill angle of ${label} (°)` }),
    crosshatch: h("input", { type: "checkbox", name: `cross-${layer.id}`, checked: layer.fill?.crosshatch, "aria-label": `Cross-hatch ${label}` }),
  };
  const cutOnly = h("span", { class: "layer-extra cut-only" }, "kerf ", controls.kerf_mm, " tabs ", controls.tabs_count, " × ", controls.tabs_width, " mm");
  const fillOnly = h("span", { class: "layer-extra fill-only" }, "every ", controls.interval, " mm at ", controls.angle, "° ",
    h("label", {}, controls.crosshatch, " cross"));
  const picker = layerMaterial(layer, controls, materials);
  const row = h("tr", { dataset: { layer: String(layer.id) } },
    h("td", {}, swatch, " ", h("span", { class: "layer-name" }, label)),
    h("td", {}, op), h("td", {}, picker.el), h("td", {}, controls.speed_mm_min), h("td", {}, controls.power_pct),
    h("td", {}, controls.passes), h("td", {}, controls.air_assist), h("td", {}, controls.order),
    h("td", {}, cutOnly, fillOnly));
  row.addEventListener("input", () => picker.paint());
  row.addEventListener("change", () => picker.paint());
  const showExtras = () => {
    cutOnly.hidden = op.value !== "cut";
    fillOnly.hidden = !(op.value === "fill" || op.value === "image");
    row.classList.toggle("layer-off", op.value === "off");
  };
  op.addEventListener("change", showExtras);
  showExtras();
  return { layer, row, controls, picker };
}

/** The changes of one layer row against the file's layer, in the API's shape (or null). */
function layerChanges({ layer, controls: c, picker }) {
  const out = { id: layer.id };
  const number = (el) => (el.value === "" ? null : Number(el.value));
  const set = (key, value, old) => { if (value !== null && value !== old) out[key] = value; };
  set("operation", c.operation.value, layer.operation);
  set("speed_mm_min", number(c.speed_mm_min), layer.speed_mm_min);
  set("power_pct", number(c.power_pct), layer.power_pct);
  set("passes", number(c.passes), layer.passes);
  set("air_assist", c.air_assist.checked, layer.air_assist);
  set("order", number(c.order), layer.order);
  set("kerf_mm", number(c.kerf_mm), layer.kerf_mm);
  const tabs = { count: number(c.tabs_count), width_mm: number(c.tabs_width) };
  if (tabs.count !== layer.tabs?.count || tabs.width_mm !== layer.tabs?.width_mm) out.tabs = tabs;
  const fill = { ...layer.fill, ...picker.fill(), interval_mm: number(c.interval), angle_deg: number(c.angle), crosshatch: c.crosshatch.checked };
  if (Object.keys(fill).some((k) => fill[k] !== layer.fill?.[k])) out.fill = fill;
  if (picker.materialId() !== (layer.material_id ?? null)) out.material_id = picker.materialId();
  return Object.keys(out).length > 1 ? out : null;
}

function placementFields(placement) {
  const p = placement || {};
  const controls = {
    x_mm: num("x_mm", p.x_mm, { min: -10000, max: 10000, label: "X (mm)" }),
    y_mm: num("y_mm", p.y_mm, { min: -10000, max: 10000, label: "Y (mm)" }),
    width_mm: num("width_mm", p.width_mm, { min: 0.01, max: 10000, label: "Width (mm)" }),
    height_mm: num("height_mm", p.height_mm, { min: 0.01, max: 10000, label: "Height (mm)" }),
    rotation_deg: num("rotation_deg", p.rotation_deg ?? 0, { min: -360, max: 360, label: "Rotation (°)" }),
    mirror_x: h("input", { type: "checkbox", name: "mirror_x", checked: p.mirror_x }),
  };
  const box = h("div", { class: "placement-grid" },
    field("X (mm)", controls.x_mm, { hint: "lower-left corner; empty: where it is drawn" }),
    field("Y (mm)", controls.y_mm),
    field("Width (mm)", controls.width_mm, { hint: "one side alone keeps the aspect ratio" }),
    field("Height (mm)", controls.height_mm),
    field("Rotation (°)", controls.rotation_deg, { hint: "counter-clockwise" }),
    field("Mirror left–right", controls.mirror_x));
  const value = () => {
    const n = (el) => (el.value === "" ? null : Number(el.value));
    const out = {};
    for (const key of ["x_mm", "y_mm", "width_mm", "height_mm", "rotation_deg"]) {
      const v = n(controls[key]);
      if (v !== null) out[key] = v;
    }
    out.mirror_x = controls.mirror_x.checked;
    return out;
  };
  return { box, value, controls };
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function boxOf(stats) {
  return stats?.design_box || stats?.laser_bounds || null;
}

/**
 * The bed at scale with the project's other files (faint) and this file's placed box, which
 * can be dragged (mouse or touch) or moved with the arrow keys (1 mm, 10 with Shift);
 * ``onMove(x, y)`` gets the box's new lower-left corner.
 */
function bedView(file, bed, others, onMove) {
  const box = boxOf(file.stats);
  if (!bed || !box) return null;
  const root = svg("svg", { viewBox: `0 0 ${bed.x} ${bed.y}`, class: "bed-view", role: "img",
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
  const group = svg("g", { class: "bed-file", tabindex: 0, role: "button",
    "aria-label": `${file.name}: drag, or use the arrow keys, to move it` });
  group.append(svg("rect", { x: box.xmin, y: box.ymin, width: Math.max(box.xmax - box.xmin, 0.5), height: Math.max(box.ymax - box.ymin, 0.5), class: "bed-box" }));
  const burn = file.stats?.laser_bounds;
  if (burn) group.append(svg("rect", { x: burn.xmin, y: burn.ymin, width: Math.max(burn.xmax - burn.xmin, 0.5), height: Math.max(burn.ymax - burn.ymin, 0.5), class: "bed-burn" }));
  flip.append(group);
  let offset = { dx: 0, dy: 0 };
  const show = () => group.setAttribute("transform", `translate(${offset.dx} ${offset.dy})`);
  const commit = () => {
    const round = (v) => Math.round(v * 10) / 10;
    onMove(round(box.xmin + offset.dx), round(box.ymin + offset.dy));
  };
  const toBed = (ev) => {
    const pt = root.createSVGPoint();
    pt.x = ev.clientX;
    pt.y = ev.clientY;
    const p = pt.matrixTransform(flip.getScreenCTM().inverse());
    return { x: p.x, y: p.y };
  };
  let start = null;
  group.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    group.setPointerCapture(ev.pointerId);
    const p = toBed(ev);
    start = { x: p.x - offset.dx, y: p.y - offset.dy };
  });
  group.addEventListener("pointermove", (ev) => {
    if (!start) return;
    const p = toBed(ev);
    offset = { dx: p.x - start.x, dy: p.y - start.y };
    show();
  });
  const end = () => {
    if (!start) return;
    start = null;
    commit();
  };
  group.addEventListener("pointerup", end);
  group.addEventListener("pointercancel", end);
  group.addEventListener("keydown", (ev) => {
    const d = ev.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [-d, 0], ArrowRight: [d, 0], ArrowUp: [0, d], ArrowDown: [0, -d] };
    if (!(ev.key in moves)) return;
    ev.preventDefault();
    offset = { dx: offset.dx + moves[ev.key][0], dy: offset.dy + moves[ev.key][1] };
    show();
    commit();
  });
  return h("figure", { class: "bed-figure" }, root,
    h("figcaption", { class: "muted" }, `Bed ${bed.x} × ${bed.y} mm. Drag the file (or use the arrow keys), then save.`));
}

/**
 * The panel for ``file`` (null for G-code, which runs as written). ``onSaved(file)`` gets the
 * file the server answered (pending again).
 */
export function designPanel(file, { onSaved, canEdit, bed = null, others = [] }) {
  const isDesign = file.kind === "svg" || file.kind === "dxf";
  if (!isDesign && file.kind !== "image") return null;
  const form = h("form", { class: "design-panel", novalidate: true, "aria-labelledby": `design-h-${file.id}` });
  const materials = isDesign ? loadMaterials() : Promise.resolve([]);
  const rows = isDesign && Array.isArray(file.layers) ? file.layers.map((l) => layerRow(l, materials)) : [];
  const placement = placementFields(file.placement);
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save and re-process");
  const reason = h("p", { class: "reason", "aria-live": "polite" });
  const table = rows.length ? h("div", { class: "layers-wrap" }, h("table", { class: "layers" },
    h("caption", {}, "Layers"),
    h("thead", {}, h("tr", {}, ["Layer", "Operation", "Material", "Speed (mm/min)", "Power (%)", "Passes", "Air", "Order", ""]
      .map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => r.row)))) : (isDesign ? h("p", { class: "muted" }, "The layers appear once the design has been read.") : null);

  const check = () => {
    const valid = [...form.querySelectorAll("input")].every((el) => el.checkValidity());
    const why = valid ? "" : "Some values are out of range.";
    for (const el of form.querySelectorAll("input")) el.toggleAttribute("aria-invalid", !el.checkValidity());
    setEnabled(save, canEdit && !why, why, reason);
    return !why;
  };
  form.addEventListener("input", check);
  form.addEventListener("change", check);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!check()) return;
    clearErrors(form);
    const body = {};
    const layers = rows.map(layerChanges).filter(Boolean);
    if (layers.length) body.layers = layers;
    const p = placement.value();
    const before = file.placement || {};
    const changed = Object.keys({ ...p, ...before }).some((k) => (p[k] ?? null) !== (before[k] ?? null))
      && !(file.placement === null && Object.keys(p).length === 2 && p.rotation_deg === 0 && !p.mirror_x);

    if (changed) body.placement = p;
    if (!Object.keys(body).length) {
      toast("Nothing changed.", "info");
      return;
    }
    save.disabled = true;
    try {
      const updated = await API.patch(`/files/${encodeURIComponent(file.id)}`, body);
      toast("Saved: the file is being processed again.", "ok");
      onSaved?.(updated);
    } catch (err) {
      showApiError(form, err);
    } finally {
      check();
    }
  });
  const onMove = (x, y) => {
    placement.controls.x_mm.value = String(x);
    placement.controls.y_mm.value = String(y);
    check();
  };
  const bedSlot = h("div", { class: "bed-slot" });
  if (canEdit && file.status === "ready") {
    const draw = (size) => bedSlot.replaceChildren(...[bedView(file, size, others, onMove)].filter(Boolean));
    if (bed) draw(bed);
    else API.get("/machine").then((m) => m?.bed_mm && draw(m.bed_mm)).catch(() => {});
  }
  form.append(
    h("h3", { id: `design-h-${file.id}` }, isDesign ? "Layers and placement" : "Placement on the bed"),
    table,
    h("fieldset", {}, h("legend", {}, "Placement"), bedSlot, placement.box),
    formError(),
    h("div", { class: "actions" }, save), reason);
  if (!canEdit) for (const el of form.querySelectorAll("input, select, button")) el.disabled = true;
  check();
  setText(reason, canEdit ? reason.textContent : "Only the file's owner can change it.");
  return form;
}
