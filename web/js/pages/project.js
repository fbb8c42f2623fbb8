// One project: its laser settings, drag-and-drop uploads with progress, its files with live
// processing status and previews, and the actions on a file (frame, run, re-process, delete).

import * as API from "../api.js";
import { go } from "../app.js";
import { clearErrors, field, formError, h, mount, setEnabled, setText, setVar, showApiError, toast } from "../dom.js";
import { ACTIVE_JOB_STATES, bedSize, bytes, duration, machineKey, mm, pct, when } from "../format.js";
import { designPanel } from "../design_panel.js";
import { jogPanel } from "../jog.js";
import { laserFieldset } from "../laser_form.js";
import { gridPanel, testGridForm } from "../testgrid.js";
import { live } from "../live.js";
import { can, getState, subscribe } from "../store.js";

const STATUS_WORDS = { pending: "Waiting to be processed", processing: "Processing", ready: "Ready", failed: "Processing failed" };

/** Why a file cannot run now, or "". */
function runBlock(state, file) {
  if (!can.control()) return "Guests cannot start jobs.";
  if (file.status !== "ready") return file.status === "failed" ? "Processing failed; fix the settings and re-process." : "The file is still being processed.";
  const m = state.machine;
  const key = machineKey(m);
  if (key === "disconnected") return "The controller is disconnected.";
  if (m?.job && ACTIVE_JOB_STATES.includes(m.job.state)) return "Another job is running.";
  if (key === "alarm") return "The machine is in alarm: unlock or home it on the dashboard.";
  const open = m?.interlocks?.open || [];
  if (open.length) return `Close the ${open.join(", ")} to continue.`;
  if (key !== "idle" && key !== "unknown") return `The machine is not idle (${m?.state}).`;
  return "";
}

/** What the estimate assumed: the controller's $ values (API.md "Estimates"). */
function estimateSummary(v) {
  const n = (k) => Number(v[k]);
  return `${Math.round(Math.min(n("110"), n("111")))} mm/min, ${Math.round(Math.min(n("120"), n("121")))} mm/s²`;
}

function estimateBasis(v) {
  if (!v) return "";
  const names = { 11: "junction deviation", 12: "arc tolerance", 32: "laser mode", 110: "X max rate", 111: "Y max rate", 112: "Z max rate", 120: "X accel", 121: "Y accel", 122: "Z accel" };
  return "Estimated with the controller's settings: " + Object.keys(names).filter((k) => k in v).map((k) => `$${k}=${v[k]} (${names[k]})`).join(", ");
}

export async function render(view, { id }) {
  const blobs = new Map(); // key -> blob: URL, revoked on leave
  const rows = new Map(); // file id -> {file, li, parts}
  let project;
  let selected = null;
  let detailJog = null;
  let stopped = false;

  try {
    project = await API.get(`/projects/${encodeURIComponent(id)}`);
  } catch (err) {
    view.append(h("h1", { tabindex: "-1" }, "Project"), h("p", { class: "panel error" }, err.status === 404 ? "This project does not exist or is not yours." : err.message),
      h("a", { href: "#/projects", class: "btn" }, "All projects"));
    return null;
  }

  // ------------------------------------------------------------------ header
  const title = h("h1", { tabindex: "-1" }, project.name);
  const desc = h("p", { class: "lead" }, project.description || "");
  const head = h("div", { class: "page-head" }, h("div", {}, h("a", { href: "#/projects", class: "crumb" }, "← Projects"), title, desc));
  if (can.control()) {
    const del = h("button", { type: "button", class: "btn btn-danger btn-small" }, "Delete project");
    del.addEventListener("click", async () => {
      if (!window.confirm(`Delete the project “${project.name}” and all its files?`)) return;
      try {
        await API.del(`/projects/${encodeURIComponent(id)}`);
        go("#/projects");
      } catch (err) {
        toast(err.message, "error");
      }
    });
    head.append(del);
  }

  // ------------------------------------------------------------------ upload
  const fileInput = h("input", { type: "file", id: "file-input", multiple: true, class: "sr-only", accept: ".gcode,.gco,.g,.nc,.cnc,.ngc,.gc,.tap,.txt,.svg,.svgz,.dxf,image/png,image/jpeg,image/bmp,image/gif,image/webp,image/tiff" });
  const uploads = h("ul", { class: "uploads", "aria-live": "polite" });
  const drop = h("div", { class: "dropzone", id: "dropzone" },
    h("p", { class: "drop-title" }, "Drop designs, images or G-code here"),
    h("p", { class: "muted" }, "SVG and DXF designs; PNG, JPEG, BMP, GIF, WebP, TIFF; or G-code under any name (.gcode .gco .nc .cnc .tap …)"),
    h("label", { for: "file-input", class: "btn btn-primary" }, "Choose files"), fileInput);
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    uploadAll([...(e.dataTransfer?.files || [])]);
  });
  fileInput.addEventListener("change", () => {
    uploadAll([...fileInput.files]);
    fileInput.value = "";
  });

  async function uploadAll(files) {
    for (const f of files) {
      const bar = h("div", { class: "bar-fill" });
      const text = h("span", { class: "bar-text" }, "0 %");
      const progress = h("div", { class: "bar small", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", "aria-label": `Uploading ${f.name}` }, bar, text);
      const status = h("span", { class: "muted" }, bytes(f.size));
      const li = h("li", { class: "upload" }, h("span", { class: "upload-name" }, f.name), progress, status);
      uploads.append(li);
      try {
        const created = await API.upload(`/projects/${encodeURIComponent(id)}/files`, f, (frac) => {
          const v = pct(frac);
          progress.setAttribute("aria-valuenow", String(Math.round(v)));
          setVar(bar, "--progress", `${v}%`);
          setText(text, `${Math.round(v)} %`);
        });
        setText(status, "Uploaded");
        setTimeout(() => li.remove(), 2500);
        if (created) upsert(created, true);
      } catch (err) {
        li.classList.add("failed");
        setText(status, err.message);
        const close = h("button", { type: "button", class: "btn btn-small" }, "Dismiss");
        close.addEventListener("click", () => li.remove());
        li.append(close);
      }
    }
  }

  // ------------------------------------------------------------------ file list
  const list = h("ul", { class: "files", "aria-label": "Files" });
  const emptyFiles = h("p", { class: "muted" }, "No files yet.");

  function thumbUrl(file) {
    const key = `thumb:${file.id}:${file.processed_at || file.sha256 || ""}`;
    return { key, path: `/files/${encodeURIComponent(file.id)}/preview.png?size=thumb` };
  }

  async function loadImage(img, key, path) {
    if (blobs.has(key)) {
      img.src = blobs.get(key);
      return;
    }
    try {
      const url = await API.blobUrl(path);
      if (stopped) return URL.revokeObjectURL(url);
      blobs.set(key, url);
      img.src = url;
    } catch {
      img.alt = "No preview";
    }
  }

  function statusBadge(file) {
    let text = STATUS_WORDS[file.status] || file.status;
    if (file.status === "processing" && Number.isFinite(Number(file.progress))) text = `Processing ${Math.round(pct(file.progress))} %`;
    return h("span", { class: `badge badge-${file.status}` }, text);
  }

  function paintRow(entry) {
    const { file, li } = entry;
    const thumb = h("div", { class: "thumb" });
    if (file.status === "ready") {
      const img = h("img", { alt: `Preview of ${file.name}`, width: "96", height: "96", decoding: "async" });
      const { key, path } = thumbUrl(file);
      loadImage(img, key, path);
      thumb.append(img);
    } else {
      thumb.append(h("span", { class: "thumb-empty", "aria-hidden": "true" }, ({ image: "IMG", svg: "SVG", dxf: "DXF" })[file.kind] || "G"));
    }
    const select = h("button", { type: "button", class: "btn btn-small" }, "Open");
    select.setAttribute("aria-label", `Open ${file.name}`);
    select.addEventListener("click", () => choose(file.id));
    const err = file.status === "failed" && file.error ? h("p", { class: "file-error", role: "alert" }, file.error) : null;
    mount(li,
      thumb,
      h("div", { class: "file-main" },
        h("span", { class: "file-name" }, file.name),
        h("span", { class: "file-meta" }, `${file.kind} · ${bytes(file.size)}`,
          file.status === "ready" && file.stats ? ` · ${bedSize(file.stats)} · ${duration(file.stats.estimated_s)}` : ""),
        statusBadge(file),
        err),
      h("div", { class: "file-actions" }, select));
    li.classList.toggle("selected", selected === file.id);
    li.dataset.status = file.status;
  }

  function upsert(file, fresh = false) {
    if (String(file.project_id) !== String(id) && file.project_id !== undefined) return;
    let entry = rows.get(String(file.id));
    if (!entry) {
      if (!file.name) return; // a progress event for a file we have not listed yet
      entry = { file, li: h("li", { class: "file", dataset: { fileId: String(file.id) } }) };
      rows.set(String(file.id), entry);
      if (fresh) list.prepend(entry.li);
      else list.append(entry.li);
    } else {
      // Answers and live events can cross (a placement off the bed fails before the PATCH's
      // "pending" answer arrives): a copy older than the one shown is dropped.
      if (file.updated_at && entry.file.updated_at && file.updated_at < entry.file.updated_at) return;
      entry.file = { ...entry.file, ...file };
    }
    if (file.status && file.status !== "ready") {
      // A re-processed file gets a new preview: forget the old pictures.
      for (const [key, url] of blobs) {
        if (key.split(":")[1] === String(file.id)) {
          URL.revokeObjectURL(url);
          blobs.delete(key);
        }
      }
    }
    emptyFiles.hidden = rows.size > 0;
    paintRow(entry);
    if (selected === String(file.id)) paintDetail();
  }

  async function loadFiles() {
    try {
      const page = await API.get(`/projects/${encodeURIComponent(id)}/files${API.qs({ limit: 200 })}`);
      const items = page.items;
      for (const f of items) upsert(f);
      emptyFiles.hidden = rows.size > 0;
    } catch (err) {
      list.append(h("li", { class: "error" }, err.message));
    }
  }

  // ------------------------------------------------------------------ file detail
  const detail = h("section", { class: "panel detail", "aria-labelledby": "detail-h", hidden: true });

  function choose(fileId, { focus = true } = {}) {
    selected = String(fileId);
    for (const [fid, entry] of rows) entry.li.classList.toggle("selected", fid === selected);
    paintDetail(true);
    if (focus) {
      detail.scrollIntoView({ block: "nearest" });
      detail.querySelector("h2")?.focus();
    }
  }

  let detailKey = "";
  let runBtn = null;
  let runReason = null;
  function paintDetail(force = false) {
    const entry = rows.get(selected);
    if (!entry) {
      detail.hidden = true;
      return;
    }
    const f = entry.file;
    const key = `${f.id}:${f.status}:${f.processed_at}:${JSON.stringify(f.stats || {})}:${f.error || ""}`;
    if (!force && key === detailKey) return;
    detailKey = key;
    detail.hidden = false;
    detailJog?.destroy();
    detailJog = null;

    const big = h("img", { class: "preview", alt: `Toolpath preview of ${f.name}`, decoding: "async" });
    const previewBox = h("div", { class: "preview-box" });
    if (f.status === "ready") {
      previewBox.append(big);
      loadImage(big, `big:${f.id}:${f.processed_at || f.sha256 || ""}`, `/files/${encodeURIComponent(f.id)}/preview.png`);
    } else {
      previewBox.append(h("p", { class: "muted" }, f.status === "failed" ? "No preview: processing failed." : "The preview appears when processing finishes."));
    }
    const s = f.stats || {};
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, statusBadge(f)),
      h("dt", {}, "Size on the bed"), h("dd", {}, bedSize(s)),
      h("dt", {}, "Position"), h("dd", {}, s.bounds ? `X ${mm(s.bounds.xmin)} … ${mm(s.bounds.xmax)}, Y ${mm(s.bounds.ymin)} … ${mm(s.bounds.ymax)} mm` : "–"),
      h("dt", {}, "Estimated time"), h("dd", { class: "estimate", title: estimateBasis(s.estimate_settings) }, duration(s.estimated_s),
        s.estimate_settings ? h("small", { class: "muted" }, ` · GRBL planner model, ${estimateSummary(s.estimate_settings)}`) : null),
      h("dt", {}, "Laser-on distance"), h("dd", {}, s.laser_on_mm !== undefined ? `${mm(s.laser_on_mm, 0)} mm` : "–"),
      h("dt", {}, "G-code lines"), h("dd", {}, s.lines !== undefined ? Number(s.lines).toLocaleString() : "–"),
      h("dt", {}, "Upload"), h("dd", {}, `${bytes(f.size)}, ${when(f.created_at)}`));
    const failure = f.status === "failed" ? h("div", { class: "notice error", role: "alert" },
      h("strong", {}, "Processing failed: "), f.error || "no reason given.",
      h("p", {}, "Change the laser settings below and re-process, or upload a corrected file.")) : null;

    const warnings = Array.isArray(f.warnings) && f.warnings.length ? h("div", { class: "notice warn" },
      h("strong", {}, "Check before running:"),
      h("ul", {}, f.warnings.map((w) => h("li", {}, typeof w === "string" ? w : w.message || JSON.stringify(w))))) : null;
    const actions = h("div", { class: "actions" });
    runReason = h("p", { class: "reason", "aria-live": "polite" });
    if (can.control()) {
      runBtn = h("button", { type: "button", class: "btn btn-primary btn-big" }, "Run");
      runBtn.addEventListener("click", async () => {
        runBtn.disabled = true;
        try {
          await API.post("/jobs", { file_id: f.id });
          toast(`Job started: ${f.name}`, "ok");
          go("#/dashboard");
        } catch (err) {
          toast(err.message, "error");
          setText(runReason, err.message);
          runBtn.disabled = false;
        }
      });
      const reprocess = h("button", { type: "button", class: "btn" }, "Re-process");
      reprocess.title = "Make the G-code again with the project's current laser settings";
      reprocess.addEventListener("click", async () => {
        reprocess.disabled = true;
        try {
          await API.post(`/files/${encodeURIComponent(f.id)}/process`);
          upsert({ id: f.id, status: "pending", error: null });
        } catch (err) {
          toast(err.message, "error");
        } finally {
          reprocess.disabled = false;
        }
      });
      const remove = h("button", { type: "button", class: "btn btn-danger" }, "Delete file");
      remove.addEventListener("click", async () => {
        if (!window.confirm(`Delete ${f.name}?`)) return;
        try {
          await API.del(`/files/${encodeURIComponent(f.id)}`);
          entry.li.remove();
          rows.delete(String(f.id));
          selected = null;
          detail.hidden = true;
          emptyFiles.hidden = rows.size > 0;
        } catch (err) {
          toast(err.message, "error");
        }
      });
      actions.append(runBtn, reprocess, remove);
    } else {
      runBtn = null;
    }
    const downloads = h("p", { class: "downloads" }, "Download: ",
      downloadLink("original", `/files/${encodeURIComponent(f.id)}/original`, f.name),
      f.status === "ready" ? [" · ", downloadLink("G-code", `/files/${encodeURIComponent(f.id)}/gcode`, `${f.name.replace(/\.[^.]+$/, "")}.gcode`)] : null);

    if (can.control() && f.status === "ready") detailJog = jogPanel({ fileId: f.id, fileName: f.name });
    const gridSlot = h("div", { class: "grid-slot" });
    const settled = f.status === "ready" || f.status === "failed";
    const others = [...rows.values()].map((e) => e.file).filter((o) => String(o.id) !== String(f.id) && o.status === "ready");
    const design = settled ? designPanel(f, {
      canEdit: can.control(), bed: getState().machine?.bed_mm, others, onSaved: (updated) => upsert(updated),
    }) : null;
    mount(detail,
      h("h2", { id: "detail-h", tabindex: "-1" }, f.name),
      h("div", { class: "detail-grid" }, previewBox, h("div", {}, facts, failure, warnings, actions, runReason, downloads)),
      design,
      gridSlot,
      detailJog?.el);
    if (can.control() && f.kind === "svg") gridPanel(f, gridSlot); // test grids are SVG designs
    paintRun(getState());
  }

  function paintRun(state) {
    const entry = rows.get(selected);
    if (!entry || !runBtn) return;
    const block = runBlock(state, entry.file);
    setEnabled(runBtn, !block, block, runReason);
  }

  function downloadLink(label, path, filename) {
    const a = h("a", { href: "#", class: "link" }, label);
    a.addEventListener("click", async (e) => {
      e.preventDefault();
      try {
        const url = await API.blobUrl(path);
        const tmp = h("a", { href: url, download: filename });
        document.body.append(tmp);
        tmp.click();
        tmp.remove();
        setTimeout(() => URL.revokeObjectURL(url), 30000);
      } catch (err) {
        toast(err.message, "error");
      }
    });
    return a;
  }

  // ------------------------------------------------------------------ laser settings
  const laser = laserFieldset(project.laser || {}, { readOnly: !can.control(), material: project.material });
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save settings");
  const saveAll = h("button", { type: "button", class: "btn", hidden: true }, "Re-process all files");
  const settingsForm = h("form", { class: "stack", novalidate: true, "aria-label": "Project and laser settings" },
    formError(),
    h("div", { class: "form-grid" },
      field("Project name", h("input", { name: "name", value: project.name, required: true, maxlength: "200", disabled: !can.control() })),
      field("Description", h("input", { name: "description", value: project.description || "", maxlength: "2000", disabled: !can.control() }))),
    laser.el,
    can.control() ? h("div", { class: "actions" }, save, saveAll) : null);
  settingsForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!laser.check(settingsForm)) {
      settingsForm.querySelector("[aria-invalid]")?.focus();
      return;
    }
    clearErrors(settingsForm);
    save.disabled = true;
    try {
      const body = { name: settingsForm.elements.name.value.trim(), description: settingsForm.elements.description.value.trim(), laser: laser.read() };
      if (laser.materialId() !== null) body.material_id = laser.materialId();
      project = await API.patch(`/projects/${encodeURIComponent(id)}`, body);
      laser.fill(project.laser || body.laser);
      setText(title, project.name);
      setText(desc, project.description || "");
      toast("Settings saved. Re-process files to apply them.", "ok");
      saveAll.hidden = rows.size === 0;
    } catch (err) {
      showApiError(settingsForm, err);
    } finally {
      save.disabled = false;
    }
  });
  saveAll.addEventListener("click", async () => {
    saveAll.disabled = true;
    for (const [fid] of rows) {
      try {
        await API.post(`/files/${encodeURIComponent(fid)}/process`);
        upsert({ id: fid, status: "pending", error: null });
      } catch (err) {
        toast(err.message, "error");
      }
    }
    saveAll.disabled = false;
    saveAll.hidden = true;
  });

  view.append(
    head,
    h("div", { class: "project-grid" },
      h("div", { class: "col" },
        can.control() ? h("section", { class: "panel", "aria-labelledby": "up-h" }, h("h2", { id: "up-h" }, "Upload"), drop, uploads) : null,
        h("section", { class: "panel", "aria-labelledby": "files-h" }, h("h2", { id: "files-h" }, "Files"), emptyFiles, list)),
      h("div", { class: "col" }, detail)),
    h("details", { class: "panel disclosure settings" }, h("summary", {}, h("span", { class: "h2" }, "Project and laser settings")), settingsForm),
    can.control() ? h("details", { class: "panel disclosure test-grid" }, h("summary", {}, h("span", { class: "h2" }, "Material test grid")),
      testGridForm(id, (file) => {
        upsert(file, true);
        choose(file.id);
      })) : null,
  );
  await loadFiles();
  const first = [...rows.values()].find((e) => e.file.status === "ready");
  if (first) choose(first.file.id, { focus: false });

  // A "file" event carries the whole file (as GET /files/{id}), on every status change and
  // processing progress step; files of other projects are ignored by upsert().
  const offFile = live.on("file", (msg) => {
    const { type: _t, ...file } = msg;
    if (file.id === undefined) return;
    upsert(file, true);
    if (!selected && file.status === "ready" && rows.has(String(file.id))) choose(file.id, { focus: false });
  });
  const offOpen = live.on("open", () => loadFiles());
  const unsub = subscribe(paintRun);
  return () => {
    stopped = true;
    offFile();
    offOpen();
    unsub();
    detailJog?.destroy();
    for (const url of blobs.values()) URL.revokeObjectURL(url);
  };
}
