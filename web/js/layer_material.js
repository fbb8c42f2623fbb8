// The material picker of a design layer: choosing a material copies its settings for the
// layer's operation (cut, score or fill) into the layer's controls and records the material's
// id with the layer; the line beside it says whether the layer still holds those settings or
// was changed since (the same comparison as the project's laser form).

import * as API from "./api.js";
import { h, setText } from "./dom.js";
import { materialLabel } from "./laser_form.js";

const VECTOR = ["cut", "score", "fill"];

/** The library as the caller sees it (one request per panel). */
export function loadMaterials() {
  return API.get("/materials?limit=200").then((p) => p.items).catch(() => []);
}

function close(a, b) {
  return typeof a === "number" && typeof b === "number" ? Math.abs(a - b) < 1e-9 : a === b;
}

/**
 * `controls`: the layer row's inputs (design_panel.js). Returns {el, materialId(), fill(), paint()}:
 * fill() gives the fill settings the material brought that have no control in the row.
 */
export function layerMaterial(layer, controls, materials) {
  const label = layer.name || layer.color;
  const select = h("select", { name: `material-${layer.id}`, "aria-label": `Material for ${label}` });
  const status = h("span", { class: "hint material-status", "aria-live": "polite" });
  let chosen = layer.material_id ?? null;
  let extraFill = {};
  let list = [];

  const op = () => (VECTOR.includes(controls.operation.value) ? controls.operation.value : null);
  const material = () => list.find((m) => m.id === chosen) || null;

  function options() {
    const o = op();
    const usable = o ? list.filter((m) => m.settings[o]) : [];
    select.replaceChildren(h("option", { value: "" }, o ? "None" : "—"),
      ...usable.map((m) => h("option", { value: String(m.id) }, materialLabel(m))));
    if (chosen !== null && !usable.some((m) => m.id === chosen) && material()) {
      select.append(h("option", { value: String(chosen) }, `${materialLabel(material())} (no ${o || "such"} settings)`));
    }
    select.value = chosen === null ? "" : String(chosen);
    select.disabled = !o && chosen === null;
  }

  function current() {
    const n = (el) => (el.value === "" ? null : Number(el.value));
    return {
      speed_mm_min: n(controls.speed_mm_min), power_pct: n(controls.power_pct), passes: n(controls.passes),
      air_assist: controls.air_assist.checked, kerf_mm: n(controls.kerf_mm),
      tabs: { count: n(controls.tabs_count), width_mm: n(controls.tabs_width) },
      fill: { ...layer.fill, ...extraFill, interval_mm: n(controls.interval), angle_deg: n(controls.angle), crosshatch: controls.crosshatch.checked },
    };
  }

  function matches(s) {
    const c = current();
    return ["speed_mm_min", "power_pct", "passes", "air_assist", "kerf_mm"].every((k) => close(c[k], s[k]))
      && close(c.tabs.count, s.tabs.count) && close(c.tabs.width_mm, s.tabs.width_mm)
      && ["interval_mm", "angle_deg", "crosshatch", "bidirectional", "overscan_mm"].every((k) => close(c.fill[k], s.fill[k]));
  }

  function paint() {
    const m = material();
    const s = m && op() ? m.settings[op()] : null;
    if (chosen === null) setText(status, "");
    else if (!m) setText(status, "From a material no longer in the library.");
    else setText(status, s && matches(s) ? "As in the material." : "Changed since.");
    status.classList.toggle("changed", Boolean(m && !(s && matches(s))));
  }

  select.addEventListener("change", () => {
    if (select.value === "") {
      chosen = null;
      extraFill = {};
      paint();
      return;
    }
    const m = list.find((x) => String(x.id) === select.value);
    const s = m?.settings[op()];
    if (!s) return;
    chosen = m.id;
    controls.speed_mm_min.value = String(s.speed_mm_min);
    controls.power_pct.value = String(s.power_pct);
    controls.passes.value = String(s.passes);
    controls.air_assist.checked = Boolean(s.air_assist);
    controls.kerf_mm.value = String(s.kerf_mm);
    controls.tabs_count.value = String(s.tabs.count);
    controls.tabs_width.value = String(s.tabs.width_mm);
    controls.interval.value = String(s.fill.interval_mm);
    controls.angle.value = String(s.fill.angle_deg);
    controls.crosshatch.checked = Boolean(s.fill.crosshatch);
    extraFill = { bidirectional: s.fill.bidirectional, overscan_mm: s.fill.overscan_mm };
    paint();
    controls.speed_mm_min.dispatchEvent(new Event("input", { bubbles: true })); // the form re-checks
  });
  controls.operation.addEventListener("change", () => {
    options();
    paint();
  });
  materials.then((items) => {
    list = items;
    options();
    paint();
  });
  options();
  return {
    el: h("span", { class: "layer-material" }, select, " ", status),
    materialId: () => chosen,
    fill: () => extraFill,
    paint,
  };
}
