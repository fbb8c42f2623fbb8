// A file's design settings: the layers of an SVG or DXF design (what each colour does and how)
// and the placement of a design or image on the bed. Saving sends only what changed
// (PATCH /files/{id}); the file is processed again and its preview follows.

import * as API from "./api.js";
import { clearErrors, field, formError, h, setEnabled, setText, setVar, showApiError, toast } from "./dom.js";
import { bedView } from "./bed_view.js";
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
  // The bed view reports the numbers of each gesture, live; a resize keeps the aspect ratio by
  // writing the sides the form already gives (width alone when none), a stretch writes both.
  const pc = placement.controls;
  const onChange = (v, gesture) => {
    const set = (key) => { pc[key].value = String(v[key]); };
    set("x_mm");
    set("y_mm");
    if (gesture === "rotate" || gesture === "pinch") set("rotation_deg");
    if (gesture === "stretch") {
      set("width_mm");
      set("height_mm");
    } else if (gesture === "resize" || gesture === "pinch") {
      const hasW = pc.width_mm.value !== "";
      const hasH = pc.height_mm.value !== "";
      if (hasW || !hasH) set("width_mm");
      if (hasH) set("height_mm");
    }
    check();
  };
  const bedSlot = h("div", { class: "bed-slot" });
  let view = null;
  if (canEdit && file.status === "ready") {
    const draw = (size) => {
      view = bedView(file, size, others, onChange);
      bedSlot.replaceChildren(...[view?.el].filter(Boolean));
    };
    if (bed) draw(bed);
    else API.get("/machine").then((m) => m?.bed_mm && draw(m.bed_mm)).catch(() => {});
  }
  placement.box.addEventListener("input", () => {
    if (view && [...placement.box.querySelectorAll("input")].every((el) => el.checkValidity())) view.follow(placement.value());
  });
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
