// The laser settings form of a project: every field of API.md's `laser` object, checked in the
// browser with the same ranges the server uses (so mistakes show while typing), with the
// server's 422 details shown beside the field they name. The material picker fills the form
// with a material's image settings from the library and remembers which one it was; a line
// under it says when the settings have been changed since.

import * as API from "./api.js";
import { clearErrors, field, h, setText, showFieldError } from "./dom.js";

export const DITHERS = [
  ["grayscale", "Grayscale (power follows brightness)"],
  ["threshold", "Threshold (black and white)"],
  ["floyd_steinberg", "Floyd–Steinberg dither"],
  ["atkinson", "Atkinson dither"],
  ["jarvis", "Jarvis dither"],
  ["stucki", "Stucki dither"],
  ["sierra", "Sierra dither"],
  ["ordered", "Ordered (Bayer) dither"],
];

/** The project `laser` fields a material's image settings decide (laserd/materials/model.py). */
export const IMAGE_FIELDS = [
  "mode", "power_min_pct", "power_max_pct", "speed_mm_min", "passes", "air_assist",
  "line_interval_mm", "dither", "threshold", "invert", "overscan_mm", "bidirectional",
  "brightness", "contrast", "gamma",
];

/** "Birch plywood 3 mm · DIODE" — how a material is named in lists and pickers. */
export function materialLabel(m) {
  const parts = [m.name];
  if (m.thickness_mm != null) parts[0] += ` ${m.thickness_mm}\u00a0mm`;
  if (m.laser_type) parts.push(m.laser_type === "co2" ? "CO₂" : m.laser_type);
  if (!m.shared) parts.push("yours");
  return parts.join(" · ");
}

/** Materials that have image settings (what a project's laser form can take), by name. */
export async function imageMaterials() {
  const page = await API.get("/materials?limit=200");
  return page.items.filter((m) => m.settings.image);
}

/** Whether `laser` still holds the image settings of `image` (same rule as the server). */
export function matchesImage(laser, image) {
  if (!image) return false;
  return IMAGE_FIELDS.every((k) => {
    const a = laser[k];
    const b = image[k];
    return typeof a === "number" && typeof b === "number" ? Math.abs(a - b) < 1e-9 : a === b;
  });
}

// [name, label, {min, max, step, hint, integer}]
const NUMBERS = [
  ["power_min_pct", "Minimum power (%)", { min: 0, max: 100, step: 0.5, hint: "Used for the lightest pixels in grayscale mode." }],
  ["power_max_pct", "Maximum power (%)", { min: 0, max: 100, step: 0.5, hint: "100 % is the controller's $30." }],
  ["speed_mm_min", "Engrave/cut speed (mm/min)", { min: 1, max: 100000, step: 10 }],
  ["travel_mm_min", "Travel speed (mm/min)", { min: 1, max: 100000, step: 10, hint: "Moves with the laser off." }],
  ["passes", "Passes", { min: 1, max: 50, step: 1, integer: true }],
  ["line_interval_mm", "Line interval (mm)", { min: 0.01, max: 10, step: 0.01, hint: "Distance between raster lines; 0.1 mm is 254 dpi." }],
  ["threshold", "Threshold (0–255)", { min: 0, max: 255, step: 1, integer: true, hint: "Threshold mode: darker pixels than this are burned." }],
  ["overscan_mm", "Overscan (mm)", { min: 0, max: 100, step: 0.5, hint: "Room to accelerate beyond each line's ends." }],
  ["width_mm", "Width on the bed (mm)", { min: 0.1, max: 10000, step: 0.1, optional: true, hint: "Give width or height to keep the aspect ratio." }],
  ["height_mm", "Height on the bed (mm)", { min: 0.1, max: 10000, step: 0.1, optional: true }],
  ["brightness", "Brightness", { min: -100, max: 100, step: 1, hint: "−100 darker … 100 lighter." }],
  ["contrast", "Contrast", { min: -100, max: 100, step: 1, hint: "−100 flat … 100 harsh." }],
  ["gamma", "Gamma", { min: 0.2, max: 5, step: 0.05, hint: "Above 1 lightens the mid-tones." }],
  ["power_levels", "Power levels", { min: 2, max: 256, step: 1, integer: true, hint: "Fewer levels give shorter G-code (grayscale mode)." }],
  ["origin_mm.x", "Origin X (mm)", { min: -10000, max: 10000, step: 0.1 }],
  ["origin_mm.y", "Origin Y (mm)", { min: -10000, max: 10000, step: 0.1 }],
];

function get(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

/**
 * Build the laser fieldset. Control names are prefixed "laser." so that 422 details such as
 * "laser.power_max_pct" land on the right control. Returns {el, read(), fill(laser), check()}.
 */
export function laserFieldset(initial = {}, { readOnly = false, material: recorded = null } = {}) {
  const controls = {};
  const mode = h("select", { name: "laser.mode" },
    h("option", { value: "M4" }, "M4 – dynamic power (engraving, less burn at corners)"),
    h("option", { value: "M3" }, "M3 – constant power (cutting)"));
  controls.mode = mode;
  const dither = h("select", { name: "laser.dither" }, DITHERS.map(([v, label]) => h("option", { value: v }, label)));
  controls.dither = dither;
  const bools = {};
  for (const [name] of [["air_assist"], ["invert"], ["bidirectional"]]) {
    bools[name] = h("input", { type: "checkbox", name: `laser.${name}` });
    controls[name] = bools[name];
  }
  const numberFields = NUMBERS.map(([name, label, o]) => {
    const input = h("input", { type: "number", name: `laser.${name}`, min: String(o.min), max: String(o.max), step: String(o.step), inputmode: "decimal" });
    input.dataset.optional = o.optional ? "1" : "";
    input.dataset.integer = o.integer ? "1" : "";
    input.addEventListener("input", () => checkOne(input, o, label));
    controls[name] = input;
    return field(label, input, { hint: o.hint || "" });
  });

  // ---------------------------------------------------------------- material picker
  let materials = [];
  let chosen = recorded?.id ?? null; // the material recorded with these settings
  const picker = h("select", { name: "material_id", id: "material-select", "aria-describedby": "material-status" },
    h("option", { value: "" }, "Choose a material…"));
  const status = h("p", { class: "hint material-status", id: "material-status", "aria-live": "polite" });
  const reapply = h("button", { type: "button", class: "btn btn-small", hidden: true }, "Apply again");
  picker.addEventListener("change", () => {
    const m = materials.find((x) => String(x.id) === picker.value);
    if (!m) return;
    chosen = m.id;
    fill({ ...read(), ...m.settings.image });
    paintStatus();
  });
  reapply.addEventListener("click", () => {
    const m = materials.find((x) => x.id === chosen);
    if (m) {
      fill({ ...read(), ...m.settings.image });
      paintStatus();
    }
  });
  function paintStatus() {
    const m = materials.find((x) => x.id === chosen);
    if (chosen === null) {
      setText(status, "Fills the form with a material's image settings from the library.");
      reapply.hidden = true;
      return;
    }
    const name = m ? materialLabel(m) : recorded?.name || `material ${chosen}`;
    const same = m ? matchesImage(read(), m.settings.image) : Boolean(recorded?.matches);
    setText(status, same ? `Settings from ${name}.` : `From ${name}, changed since.`);
    status.classList.toggle("changed", !same);
    reapply.hidden = same || !m || readOnly;
  }
  if (!readOnly) {
    imageMaterials().then((list) => {
      materials = list;
      picker.append(...list.map((m) => h("option", { value: String(m.id) }, materialLabel(m))));
      if (chosen !== null && list.some((m) => m.id === chosen)) picker.value = String(chosen);
      paintStatus();
    }).catch(() => setText(status, "The material library could not be loaded."));
  }

  const el = h("fieldset", { class: "laser-form", disabled: readOnly },
    h("legend", {}, "Laser settings"),
    readOnly
      ? (recorded ? h("p", { class: "hint" }, `Settings from ${recorded.name}${recorded.matches ? "" : ", changed since"}.`) : null)
      : h("div", { class: "field wide" }, h("label", { for: "material-select" }, "Material"), picker, h("div", { class: "row" }, status, reapply)),
    h("div", { class: "form-grid" },
      field("Laser mode", mode),
      field("Image mode", dither),
      ...numberFields,
      field("Air assist", bools.air_assist),
      field("Invert image", bools.invert),
      field("Engrave in both directions", bools.bidirectional),
    ),
  );

  function checkOne(input, o, label) {
    const form = input.form || el;
    const err = form.querySelector(`#${CSS.escape(input.id)}-err`);
    let message = "";
    if (input.value === "") {
      if (!o.optional) message = `${label.replace(/ \(.*\)$/, "")} is required.`;
    } else {
      const v = Number(input.value);
      if (!Number.isFinite(v)) message = "Enter a number.";
      else if (v < o.min || v > o.max) message = `Between ${o.min} and ${o.max}.`;
      else if (o.integer && !Number.isInteger(v)) message = "A whole number.";
    }
    if (err) {
      err.textContent = message;
      err.hidden = !message;
    }
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    return !message;
  }

  function fill(laser) {
    mode.value = laser.mode || "M4";
    dither.value = laser.dither || "grayscale";
    for (const name of Object.keys(bools)) bools[name].checked = Boolean(laser[name]);
    for (const [name, label, o] of NUMBERS) {
      const v = get(laser, name);
      controls[name].value = v === undefined || v === null ? "" : String(v);
      // A field that showed an error is checked again, so a preset clears stale messages.
      if (controls[name].hasAttribute("aria-invalid")) checkOne(controls[name], o, label);
    }
  }

  function read() {
    const out = { mode: mode.value, dither: dither.value };
    for (const name of Object.keys(bools)) out[name] = bools[name].checked;
    for (const [name] of NUMBERS) {
      const raw = controls[name].value;
      const v = raw === "" ? null : Number(raw);
      if (name.includes(".")) {
        const [a, b] = name.split(".");
        out[a] = { ...(out[a] || {}), [b]: v ?? 0 };
      } else if (v !== null) out[name] = v;
      else if (controls[name].dataset.optional) out[name] = null;
    }
    return out;
  }

  /** Check every field; false (and messages shown) when one is out of range. */
  function check(form) {
    clearErrors(form);
    let ok = true;
    for (const [name, label, o] of NUMBERS) {
      if (!checkOne(controls[name], o, label)) ok = false;
    }
    const lo = Number(controls.power_min_pct.value);
    const hi = Number(controls.power_max_pct.value);
    if (ok && lo > hi) {
      showFieldError(form, "laser.power_min_pct", "Must not exceed the maximum power.");
      ok = false;
    }
    const interval = Number(controls.line_interval_mm.value);
    for (const name of ["width_mm", "height_mm"]) {
      const v = controls[name].value;
      if (ok && v !== "" && Number(v) < interval) {
        showFieldError(form, `laser.${name}`, "Must be at least one line interval.");
        ok = false;
      }
    }
    return ok;
  }

  // Editing a field after choosing a material shows that the settings now differ from it.
  el.addEventListener("input", () => { if (chosen !== null) paintStatus(); });
  el.addEventListener("change", (e) => { if (e.target !== picker && chosen !== null) paintStatus(); });

  fill(initial);
  paintStatus();
  return { el, read, fill, check, materialId: () => chosen };
}
