// Material test grids: the form that makes one in a project (with a preview of the layout,
// drawn before anything is generated) and, on a grid file's page, the cells to pick from: the
// best one is saved as a material in one step (name and thickness asked).

import * as API from "./api.js";
import { clearErrors, field, formError, h, showApiError, showFieldError, toast } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== null) el.textContent = text;
  return el;
}

function values(min, max, steps, decimals) {
  const out = [];
  for (let i = 0; i < steps; i += 1) {
    const v = steps === 1 ? min : min + ((max - min) * i) / (steps - 1);
    out.push(Number(v.toFixed(decimals)));
  }
  return out;
}

function fmt(v) {
  return String(Number(v.toFixed(1)));
}

/** The grid's layout as the server will make it: power along X, speed up Y, labels under. */
function layoutPreview(req) {
  const powers = values(req.power_pct.min, req.power_pct.max, req.power_pct.steps, 1);
  const speeds = values(req.speed_mm_min.min, req.speed_mm_min.max, req.speed_mm_min.steps, 0);
  const cell = req.cell_mm;
  const band = req.labels ? Math.min(3, cell / 4) * 3 : 0;
  const px = cell + req.gap_mm;
  const py = cell + band + req.gap_mm;
  const w = powers.length * px - req.gap_mm;
  const hgt = speeds.length * py - req.gap_mm;
  const svg = svgEl("svg", { viewBox: `0 0 ${w} ${hgt}`, class: "grid-preview", role: "img",
    "aria-label": `Test grid: ${powers.length} powers × ${speeds.length} speeds, ${fmt(w)} × ${fmt(hgt)} mm` });
  speeds.forEach((s, row) => {
    powers.forEach((p, col) => {
      const x = col * px;
      const y = hgt - (row * py + band + cell);
      const span = req.power_pct.max - req.power_pct.min;
      const shade = span > 0 ? 0.15 + (0.8 * (p - req.power_pct.min)) / span : 0.6;
      svg.append(svgEl("rect", { x, y, width: cell, height: cell, class: `cell op-${req.operation}`, "fill-opacity": req.operation === "fill" ? shade.toFixed(2) : 0 }));
      if (req.labels) {
        const size = Math.min(3, cell / 4);
        svg.append(svgEl("text", { x, y: y + cell + size * 1.2, "font-size": size }, `${fmt(p)}%`));
        svg.append(svgEl("text", { x, y: y + cell + size * 2.6, "font-size": size }, fmt(s)));
      }
    });
  });
  return { svg, width: w, height: hgt, cells: powers.length * speeds.length };
}

/** The "Test grid" form of a project. onCreated(file) after the server made it. */
export function testGridForm(projectId, onCreated) {
  const num = (name, value, attrs = {}) => h("input", { type: "number", name, value: String(value), inputmode: "decimal", ...attrs });
  const op = h("select", { name: "operation" },
    h("option", { value: "fill" }, "Fill (engraved squares)"),
    h("option", { value: "score" }, "Score (outlines)"),
    h("option", { value: "cut" }, "Cut (squares cut out)"));
  const pmin = num("power_pct.min", 10, { min: 0, max: 100, step: 1 });
  const pmax = num("power_pct.max", 100, { min: 0, max: 100, step: 1 });
  const psteps = num("power_pct.steps", 10, { min: 1, max: 20, step: 1 });
  const smin = num("speed_mm_min.min", 500, { min: 1, max: 100000, step: 10 });
  const smax = num("speed_mm_min.max", 5000, { min: 1, max: 100000, step: 10 });
  const ssteps = num("speed_mm_min.steps", 10, { min: 1, max: 20, step: 1 });
  const cell = num("cell_mm", 10, { min: 2, max: 100, step: 1 });
  const gap = num("gap_mm", 3, { min: 0.5, max: 50, step: 0.5 });
  const x = num("placement.x_mm", 10, { min: 0, max: 10000, step: 1 });
  const y = num("placement.y_mm", 10, { min: 0, max: 10000, step: 1 });
  const labels = h("input", { type: "checkbox", name: "labels", checked: true });
  const passes = num("passes", 1, { min: 1, max: 50, step: 1 });
  const air = h("select", { name: "air_assist" },
    h("option", { value: "" }, "On for cut, off otherwise"), h("option", { value: "true" }, "On"), h("option", { value: "false" }, "Off"));
  const interval = num("fill.interval_mm", 0.1, { min: 0.01, max: 10, step: 0.01 });
  const labelPower = h("input", { type: "number", name: "label_power_pct", min: "0", max: "100", step: "1", inputmode: "decimal", placeholder: "lowest power" });
  const labelSpeed = h("input", { type: "number", name: "label_speed_mm_min", min: "1", max: "100000", step: "10", inputmode: "decimal", placeholder: "highest speed" });
  const preview = h("figure", { class: "grid-preview-box" });
  const caption = h("figcaption", { class: "hint" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Make test grid");
  const form = h("form", { class: "stack", novalidate: true, "aria-label": "Test grid" },
    formError(),
    h("p", { class: "hint" }, "Burns a square per power and speed, each labelled with its values. Pick the best square afterwards on the file's page and save it as a material."),
    h("div", { class: "form-grid" },
      field("Operation", op),
      field("Lowest power (%)", pmin), field("Highest power (%)", pmax), field("Power steps", psteps),
      field("Lowest speed (mm/min)", smin), field("Highest speed (mm/min)", smax), field("Speed steps", ssteps),
      field("Cell size (mm)", cell), field("Gap (mm)", gap),
      field("Position X (mm)", x), field("Position Y (mm)", y),
      field("Passes per cell", passes), field("Air assist for the cells", air),
      field("Hatch spacing of fill cells (mm)", interval, { hint: "Fill grids only." }),
      field("Label each cell", labels),
      field("Labels' power (%)", labelPower, { hint: "Empty: the grid's lowest power." }),
      field("Labels' speed (mm/min)", labelSpeed, { hint: "Empty: the grid's highest speed." })),
    preview,
    h("div", { class: "actions" }, submit));

  function read() {
    const out = {
      operation: op.value,
      power_pct: { min: Number(pmin.value), max: Number(pmax.value), steps: Number(psteps.value) },
      speed_mm_min: { min: Number(smin.value), max: Number(smax.value), steps: Number(ssteps.value) },
      cell_mm: Number(cell.value),
      gap_mm: Number(gap.value),
      labels: labels.checked,
      passes: Number(passes.value),
      placement: { x_mm: Number(x.value), y_mm: Number(y.value) },
    };
    if (air.value) out.air_assist = air.value === "true";
    if (op.value === "fill" && interval.value !== "") out.fill = { interval_mm: Number(interval.value) };
    if (labelPower.value !== "") out.label_power_pct = Number(labelPower.value);
    if (labelSpeed.value !== "") out.label_speed_mm_min = Number(labelSpeed.value);
    return out;
  }
  function valid(req) {
    const r = [req.power_pct, req.speed_mm_min];
    return r.every((v) => [v.min, v.max, v.steps].every(Number.isFinite) && v.steps >= 1 && v.steps <= 20 && v.min <= v.max)
      && req.cell_mm >= 2 && req.gap_mm >= 0.5;
  }
  function paint() {
    const req = read();
    if (!valid(req)) {
      preview.replaceChildren(h("p", { class: "muted" }, "Give valid ranges to see the layout."));
      return;
    }
    const p = layoutPreview(req);
    caption.textContent = `${p.cells} cells, ${fmt(p.width)} × ${fmt(p.height)} mm, from X ${fmt(req.placement.x_mm)} Y ${fmt(req.placement.y_mm)}. Power rises to the right, speed upwards.`;
    preview.replaceChildren(p.svg, caption);
  }
  form.addEventListener("input", paint);
  form.addEventListener("change", paint);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const req = read();
    if (req.power_pct.min > req.power_pct.max) {
      showFieldError(form, "power_pct.min", "Must not exceed the highest power.");
      return;
    }
    if (req.speed_mm_min.min > req.speed_mm_min.max) {
      showFieldError(form, "speed_mm_min.min", "Must not exceed the highest speed.");
      return;
    }
    submit.disabled = true;
    try {
      const file = await API.post(`/projects/${encodeURIComponent(projectId)}/test-grid`, req);
      toast(`Test grid made: ${file.name}`, "ok");
      onCreated?.(file);
    } catch (err) {
      showApiError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  paint();
  return form;
}

const grids = new Map();

/** The grid of a file, or null when it is no test grid (cached per file). */
function gridOf(fileId) {
  if (!grids.has(fileId)) {
    grids.set(fileId, API.get(`/files/${encodeURIComponent(fileId)}/grid`).catch(() => null));
  }
  return grids.get(fileId);
}

/** Fills `slot` with the grid's cells when `file` is a test grid; each saves as a material. */
export async function gridPanel(file, slot) {
  const grid = await gridOf(file.id);
  if (!grid || !slot.isConnected) return;
  const rows = Math.max(...grid.grid.map((c) => c.row)) + 1;
  const cols = Math.max(...grid.grid.map((c) => c.col)) + 1;
  const at = new Map(grid.grid.map((c) => [`${c.row}:${c.col}`, c]));
  const saver = h("div", { class: "grid-saver" });
  const table = h("table", { class: "grid-cells" },
    h("caption", {}, `Pick the best square (${grid.operation}): power rises to the right, speed upwards.`));
  for (let r = rows - 1; r >= 0; r -= 1) {
    const tr = h("tr");
    for (let c = 0; c < cols; c += 1) {
      const cell = at.get(`${r}:${c}`);
      tr.append(h("td", {}, h("button", {
        type: "button", class: "btn btn-small grid-cell",
        "aria-label": `Save the cell at ${fmt(cell.power_pct)} % and ${fmt(cell.speed_mm_min)} mm/min as a material`,
        onclick: () => ask(cell),
      }, `${fmt(cell.power_pct)}%`, h("br"), fmt(cell.speed_mm_min))));
    }
    table.append(tr);
  }

  function ask(cell) {
    const name = h("input", { name: "name", required: true, maxlength: "200" });
    const thickness = h("input", { type: "number", name: "thickness_mm", min: "0.01", max: "1000", step: "0.1", inputmode: "decimal" });
    const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save as material");
    const form = h("form", { class: "stack", novalidate: true, "aria-label": "Save cell as material" },
      formError(),
      h("p", {}, `${grid.operation}: ${fmt(cell.speed_mm_min)} mm/min at ${fmt(cell.power_pct)} %${grid.passes > 1 ? `, ${grid.passes} passes` : ""}.`),
      h("div", { class: "form-grid" }, field("Material name", name), field("Thickness (mm, optional)", thickness)),
      h("div", { class: "actions" }, save));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!name.value.trim()) {
        showFieldError(form, "name", "Give the material a name.");
        name.focus();
        return;
      }
      save.disabled = true;
      try {
        const m = await API.post("/materials", {
          name: name.value.trim(),
          thickness_mm: thickness.value === "" ? null : Number(thickness.value),
          description: `From a test grid: ${grid.operation} at ${fmt(cell.power_pct)} % and ${fmt(cell.speed_mm_min)} mm/min.`,
          settings: { [grid.operation]: { speed_mm_min: cell.speed_mm_min, power_pct: cell.power_pct, passes: grid.passes, air_assist: grid.air_assist } },
        });
        toast(`Saved as material: ${m.name}`, "ok");
        saver.replaceChildren(h("p", { class: "notice" }, `Saved “${m.name}” in your materials.`));
      } catch (err) {
        showApiError(form, err);
      } finally {
        save.disabled = false;
      }
    });
    saver.replaceChildren(form);
    name.focus();
  }

  slot.replaceChildren(h("section", { class: "grid-panel", "aria-label": "Test grid cells" },
    h("h3", {}, "Test grid"), table, saver));
}
