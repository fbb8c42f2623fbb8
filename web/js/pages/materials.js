// The material library: shared entries (admins keep them) and each user's own. Search, create,
// edit, delete, LightBurn .clb import and export, and the admin's "restore starter library".

import * as API from "../api.js";
import { clearErrors, field, formError, h, mount, showApiError, showFieldError, toast } from "../dom.js";
import { DITHERS, materialLabel } from "../laser_form.js";
import { getState, can } from "../store.js";

const PAGE = 100;
const VECTOR_OPS = [
  ["cut", "Cut"],
  ["score", "Score"],
  ["fill", "Fill (engrave areas)"],
];
const LASER_TYPES = [["", "Any / not said"], ["diode", "Diode"], ["co2", "CO2"], ["fiber", "Fibre"]];

/** "300 mm/min · 100 % · 2 passes · air" for one operation's settings. */
export function opSummary(op, s) {
  if (!s) return "";
  const power = op === "image" ? `${s.power_min_pct}–${s.power_max_pct}\u00a0%` : `${s.power_pct}\u00a0%`;
  const parts = [`${s.speed_mm_min}\u00a0mm/min`, power];
  if (s.passes > 1) parts.push(`${s.passes} passes`);
  if (s.air_assist) parts.push("air");
  if (op === "image") parts.push(s.dither);
  return parts.join(" · ");
}

function mayChange(m) {
  const user = getState().user;
  if (!user || !can.control()) return false;
  return can.admin() || (!m.shared && m.owner_id === user.id);
}

export async function render(view) {
  const q = h("input", { type: "search", name: "q", placeholder: "Name or description", maxlength: "200" });
  const thickness = h("input", { type: "number", name: "thickness_mm", min: "0.01", step: "0.1", inputmode: "decimal" });
  const body = h("tbody");
  const table = h("table", { class: "table materials-table" },
    h("caption", { class: "sr-only" }, "Materials, by name"),
    h("thead", {}, h("tr", {}, ["Material", "Thickness", "Laser", "Settings", "Library", ""].map((t) => h("th", { scope: "col" }, t)))),
    body);
  const empty = h("p", { class: "muted", hidden: true }, "No material matches.");
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const editorSlot = h("div");

  let seq = 0;
  async function load() {
    const mine = ++seq;
    try {
      const page = await API.get(`/materials${API.qs({ q: q.value.trim(), thickness_mm: thickness.value, limit: PAGE })}`);
      if (mine !== seq) return;
      body.replaceChildren(...page.items.map(row));
      empty.hidden = page.total > 0;
      table.hidden = page.total === 0;
      count.textContent = page.total > page.items.length
        ? `Showing ${page.items.length} of ${page.total}; narrow the search.`
        : `${page.total} material${page.total === 1 ? "" : "s"}`;
    } catch (err) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: "6", class: "error" }, err.message)));
    }
  }
  let timer = null;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(load, 200);
  };
  q.addEventListener("input", later);
  thickness.addEventListener("input", later);

  function row(m) {
    const ops = ["cut", "score", "fill", "image"].filter((op) => m.settings[op]);
    const actions = h("td", { class: "actions" });
    if (mayChange(m)) {
      actions.append(
        h("button", { type: "button", class: "btn btn-small", onclick: () => openEditor(m), "aria-label": `Edit ${materialLabel(m)}` }, "Edit"),
        h("button", { type: "button", class: "btn btn-small btn-danger", onclick: () => remove(m), "aria-label": `Delete ${materialLabel(m)}` }, "Delete"));
    }
    return h("tr", { dataset: { materialId: String(m.id) } },
      h("td", { "data-label": "Material" }, h("strong", {}, m.name),
        m.description ? h("div", { class: "hint" }, m.description) : null),
      h("td", { "data-label": "Thickness", class: "num" }, m.thickness_mm == null ? "—" : `${m.thickness_mm}\u00a0mm`),
      h("td", { "data-label": "Laser" }, m.laser_type ? m.laser_type.toUpperCase().replace("CO2", "CO₂") : "—"),
      h("td", { "data-label": "Settings" }, h("ul", { class: "op-list" },
        ops.map((op) => h("li", {}, h("span", { class: "label" }, `${op}: `), opSummary(op, m.settings[op]))))),
      h("td", { "data-label": "Library" },
        h("span", { class: `badge ${m.shared ? "badge-ready" : "badge-pending"}` }, m.shared ? "Shared" : "Yours"),
        m.starter ? h("div", { class: "hint" }, "Starter: verify with a test grid") : null),
      actions);
  }

  async function remove(m) {
    if (!window.confirm(`Delete the material “${materialLabel(m)}”? Projects that used it keep their settings.`)) return;
    try {
      await API.del(`/materials/${encodeURIComponent(m.id)}`);
      toast(`Deleted ${m.name}.`, "ok");
      await load();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  function openEditor(material) {
    mount(editorSlot, editor(material, async (saved) => {
      editorSlot.replaceChildren();
      toast(`Saved ${saved.name}.`, "ok");
      await load();
    }, () => editorSlot.replaceChildren()));
    editorSlot.querySelector("input")?.focus();
  }

  // ---------------------------------------------------------------- import and export
  const fileInput = h("input", { type: "file", accept: ".clb,application/xml,text/xml", class: "sr-only", id: "clb-file", "aria-label": "LightBurn library file" });
  const sharedImport = h("input", { type: "checkbox", name: "shared_import" });
  const importLaser = h("select", { name: "import_laser_type" }, LASER_TYPES.map(([v, t]) => h("option", { value: v }, t)));
  const report = h("div", { class: "import-report", "aria-live": "polite" });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    report.replaceChildren(h("p", { class: "muted" }, `Importing ${file.name}…`));
    try {
      const path = `/materials/import${API.qs({ shared: sharedImport.checked ? "true" : "", laser_type: importLaser.value })}`;
      const result = await API.upload(path, file);
      const ignored = Object.entries(result.ignored_fields || {});
      report.replaceChildren(
        h("p", { class: "notice" }, `Imported ${result.created} material${result.created === 1 ? "" : "s"} from ${file.name}.`),
        result.skipped.length
          ? h("div", { class: "notice warn" }, h("p", {}, `${result.skipped.length} entr${result.skipped.length === 1 ? "y was" : "ies were"} skipped:`),
            h("ul", { class: "skipped" }, result.skipped.map((s) => h("li", {}, h("strong", {}, s.name), ` — ${s.reason}`))))
          : null,
        ignored.length
          ? h("p", { class: "hint" }, `LightBurn fields with no meaning here (left out): ${ignored.map(([k, n]) => `${k} (${n})`).join(", ")}.`)
          : null);
      await load();
    } catch (err) {
      report.replaceChildren(h("p", { class: "notice error", role: "alert" }, `The library was not imported: ${err.message}`));
    } finally {
      fileInput.value = "";
    }
  });
  const importBtn = h("button", { type: "button", class: "btn", onclick: () => fileInput.click() }, "Import LightBurn library (.clb)");
  const exportBtn = h("button", { type: "button", class: "btn", onclick: async () => {
    try {
      const url = await API.blobUrl("/materials/export.clb");
      const a = h("a", { href: url, download: "laserd-materials.clb" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
    } catch (err) {
      toast(err.message, "error");
    }
  } }, "Export as .clb");
  const restoreBtn = can.admin() ? h("button", { type: "button", class: "btn", onclick: async () => {
    try {
      const r = await API.post("/materials/starter");
      toast(r.created ? `Put back ${r.created} starter material${r.created === 1 ? "" : "s"}.` : "The starter library is complete.", "ok");
      await load();
    } catch (err) {
      toast(err.message, "error");
    }
  } }, "Restore starter library") : null;
  const newBtn = can.control() ? h("button", { type: "button", class: "btn btn-primary", onclick: () => openEditor(null) }, "New material") : null;

  view.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Materials")),
    h("p", { class: "lead" }, "Proven settings per material: the shared library of this machine and your own. Starter entries are starting points: burn a test grid before real work."),
    h("div", { class: "panel stack" },
      h("div", { class: "row" }, newBtn, can.control() ? importBtn : null, exportBtn, restoreBtn),
      can.control() ? fileInput : null,
      can.control() ? h("div", { class: "form-grid" },
        field("Imported library is for", importLaser, { hint: "A .clb file does not say which laser its values suit." }),
        can.admin() ? field("Import into the shared library", sharedImport) : null) : null,
      report),
    editorSlot,
    h("section", { class: "panel", "aria-label": "Material list" },
      h("div", { class: "form-grid" }, field("Search", q), field("Thickness (mm)", thickness)),
      count, empty, table),
  );
  await load();
  return () => clearTimeout(timer);
}

// ---------------------------------------------------------------- the editor

function num(name, value, { min, max, step, integer = false, optional = false } = {}) {
  const input = h("input", { type: "number", name, min: String(min), max: String(max), step: String(step), inputmode: "decimal" });
  input.value = value === undefined || value === null ? "" : String(value);
  input.dataset.integer = integer ? "1" : "";
  input.dataset.optional = optional ? "1" : "";
  return input;
}

const OP_FIELDS = [
  ["speed_mm_min", "Speed (mm/min)", { min: 1, max: 100000, step: 10 }],
  ["power_pct", "Power (%)", { min: 0, max: 100, step: 0.5 }],
  ["passes", "Passes", { min: 1, max: 50, step: 1, integer: true }],
];
const CUT_FIELDS = [
  ["kerf_mm", "Kerf (mm)", { min: 0, max: 5, step: 0.01 }],
  ["tabs.count", "Tabs per shape", { min: 0, max: 64, step: 1, integer: true }],
  ["tabs.width_mm", "Tab width (mm)", { min: 0.01, max: 50, step: 0.1 }],
];
const FILL_FIELDS = [
  ["fill.interval_mm", "Line interval (mm)", { min: 0.01, max: 10, step: 0.01 }],
  ["fill.angle_deg", "Angle (°)", { min: -360, max: 360, step: 1 }],
  ["fill.overscan_mm", "Overscan (mm)", { min: 0, max: 50, step: 0.5 }],
];
const IMAGE_FIELDS = [
  ["speed_mm_min", "Speed (mm/min)", { min: 1, max: 100000, step: 10 }],
  ["power_min_pct", "Minimum power (%)", { min: 0, max: 100, step: 0.5 }],
  ["power_max_pct", "Maximum power (%)", { min: 0, max: 100, step: 0.5 }],
  ["passes", "Passes", { min: 1, max: 50, step: 1, integer: true }],
  ["line_interval_mm", "Line interval (mm)", { min: 0.01, max: 10, step: 0.01 }],
  ["overscan_mm", "Overscan (mm)", { min: 0, max: 100, step: 0.5 }],
];

function get(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function set(obj, path, value) {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ||= {};
  o[keys[keys.length - 1]] = value;
}

/** One operation's fieldset: a "use" switch and its fields (named settings.<op>.<field>). */
function opFieldset(op, label, current) {
  const use = h("input", { type: "checkbox", name: `use.${op}`, checked: Boolean(current) });
  const s = current || {};
  const defs = op === "image" ? IMAGE_FIELDS : [...OP_FIELDS, ...(op === "cut" ? CUT_FIELDS : []), ...(op === "fill" ? FILL_FIELDS : [])];
  const inputs = defs.map(([name, text, o]) => [name, num(`settings.${op}.${name}`, get(s, name), o)]);
  const bools = op === "image"
    ? [["air_assist", "Air assist"], ["bidirectional", "Both directions"], ["invert", "Invert"]]
    : [["air_assist", "Air assist"], ...(op === "fill" ? [["fill.crosshatch", "Cross-hatch"], ["fill.bidirectional", "Both directions"]] : [])];
  const checks = bools.map(([name, text]) => {
    const c = h("input", { type: "checkbox", name: `settings.${op}.${name}` });
    c.checked = Boolean(get(s, name) ?? (name.endsWith("bidirectional")));
    return [name, c, text];
  });
  let extra = [];
  if (op === "image") {
    const mode = h("select", { name: `settings.image.mode` },
      h("option", { value: "M4" }, "M4 – dynamic power"), h("option", { value: "M3" }, "M3 – constant power"));
    mode.value = s.mode || "M4";
    const dither = h("select", { name: `settings.image.dither` }, DITHERS.map(([v, t]) => h("option", { value: v }, t)));
    dither.value = s.dither || "grayscale";
    extra = [["mode", mode, "Laser mode"], ["dither", dither, "Image mode"]];
  }
  const grid = h("div", { class: "form-grid" },
    ...inputs.map(([name, input]) => field(defs.find((d) => d[0] === name)[1], input)),
    ...extra.map(([, control, text]) => field(text, control)),
    ...checks.map(([, c, text]) => field(text, c)));
  const sync = () => { grid.hidden = !use.checked; };
  use.addEventListener("change", sync);
  sync();
  const el = h("fieldset", { class: "op-fieldset" }, h("legend", {}, field(label, use)), grid);
  function read() {
    if (!use.checked) return null;
    const out = structuredClone(s);
    for (const [name, input] of inputs) {
      if (input.value !== "") set(out, name, Number(input.value));
    }
    for (const [name, c] of checks) set(out, name, c.checked);
    for (const [name, control] of extra) out[name] = control.value;
    return out;
  }
  function check(form) {
    if (!use.checked) return true;
    let ok = true;
    for (const [name, input] of inputs) {
      const o = defs.find((d) => d[0] === name)[2];
      const v = Number(input.value);
      const required = name === "speed_mm_min" || name === "power_pct";
      let message = "";
      if (input.value === "") message = required ? "Required." : "";
      else if (!Number.isFinite(v) || v < o.min || v > o.max) message = `Between ${o.min} and ${o.max}.`;
      else if (o.integer && !Number.isInteger(v)) message = "A whole number.";
      if (message) {
        showFieldError(form, input.name, message);
        ok = false;
      }
    }
    return ok;
  }
  return { el, read, check, use };
}

function editor(material, onSaved, onCancel) {
  const m = material || { name: "", thickness_mm: null, description: "", laser_type: null, shared: false, settings: {} };
  const name = h("input", { name: "name", required: true, maxlength: "200", value: m.name });
  const thickness = num("thickness_mm", m.thickness_mm, { min: 0.01, max: 1000, step: 0.1, optional: true });
  const description = h("textarea", { name: "description", rows: "2", maxlength: "5000" });
  description.value = m.description || "";
  const laserType = h("select", { name: "laser_type" }, LASER_TYPES.map(([v, t]) => h("option", { value: v }, t)));
  laserType.value = m.laser_type || "";
  const shared = h("input", { type: "checkbox", name: "shared", checked: m.shared });
  const ops = [...VECTOR_OPS, ["image", "Image (photos)"]].map(([op, label]) => [op, opFieldset(op, label, m.settings[op])]);
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, material ? "Save material" : "Add material");
  const cancel = h("button", { type: "button", class: "btn", onclick: onCancel }, "Cancel");
  const form = h("form", { class: "stack", novalidate: true, "aria-label": material ? `Edit ${m.name}` : "New material" },
    formError(),
    h("div", { class: "form-grid" },
      field("Name", name),
      field("Thickness (mm, optional)", thickness),
      field("Laser", laserType),
      can.admin() ? field("In the shared library", shared, { hint: "Everyone sees shared materials; only admins change them." }) : null,
      field("Description", description, { wide: true })),
    h("input", { type: "hidden", name: "settings" }),
    ...ops.map(([, f]) => f.el),
    h("div", { class: "actions" }, submit, cancel));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    let ok = true;
    if (!name.value.trim()) {
      showFieldError(form, "name", "Give the material a name.");
      ok = false;
    }
    for (const [, f] of ops) if (!f.check(form)) ok = false;
    const settings = Object.fromEntries(ops.map(([op, f]) => [op, f.read()]));
    if (ok && !Object.values(settings).some(Boolean)) {
      showApiError(form, { message: "Choose at least one operation (cut, score, fill or image)." });
      ok = false;
    }
    if (!ok) {
      form.querySelector("[aria-invalid]")?.focus();
      return;
    }
    const body = {
      name: name.value.trim(),
      thickness_mm: thickness.value === "" ? null : Number(thickness.value),
      description: description.value.trim(),
      laser_type: laserType.value || null,
      settings,
    };
    if (can.admin()) body.shared = shared.checked;
    submit.disabled = true;
    try {
      let saved;
      if (material) {
        saved = await API.patch(`/materials/${encodeURIComponent(material.id)}`, body);
      } else {
        for (const op of Object.keys(settings)) if (!settings[op]) delete settings[op];
        saved = await API.post("/materials", body);
      }
      onSaved(saved);
    } catch (err) {
      showApiError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  return h("section", { class: "panel", "aria-label": "Material editor" },
    h("h2", {}, material ? `Edit ${materialLabel(m)}` : "New material"), form);
}
