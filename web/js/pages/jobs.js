// Job history: every job the caller may see, newest first, refreshed when a job changes.

import * as API from "../api.js";
import { h } from "../dom.js";
import { JOB_WORDS, duration, pauseReason, pct, when } from "../format.js";
import { live } from "../live.js";

const PAGE = 50;
const names = new Map();

export async function render(view) {
  const body = h("tbody");
  const more = h("button", { type: "button", class: "btn", hidden: true }, "Show older jobs");
  const empty = h("p", { class: "muted", hidden: true }, "No jobs yet.");
  const table = h("table", { class: "table jobs-table" },
    h("caption", { class: "sr-only" }, "Job history, newest first"),
    h("thead", {}, h("tr", {},
      ["File", "State", "Progress", "Started", "Duration", "Note"].map((t) => h("th", { scope: "col" }, t)))),
    body);
  let offset = 0;
  let loading = false;

  async function name(fileId) {
    if (names.has(fileId)) return names.get(fileId);
    const p = API.get(`/files/${encodeURIComponent(fileId)}`).then((f) => f.name).catch(() => `File ${fileId}`);
    names.set(fileId, p);
    return p;
  }

  function row(job) {
    const fileCell = h("td", { "data-label": "File" }, job.file_name || `File ${job.file_id}`);
    if (!job.file_name) name(job.file_id).then((n) => { fileCell.textContent = n; });
    const value = job.state === "completed" ? 100 : pct(job.progress);
    return h("tr", { dataset: { jobId: String(job.id), state: job.state } },
      fileCell,
      h("td", { "data-label": "State" }, h("span", { class: `badge badge-job-${job.state}` }, JOB_WORDS[job.state] || job.state)),
      h("td", { "data-label": "Progress", class: "num" }, `${Math.round(value)} %`),
      h("td", { "data-label": "Started" }, when(job.started_at)),
      h("td", { "data-label": "Duration", class: "num" }, duration(job.elapsed_s)),
      h("td", { "data-label": "Note" }, job.error || (job.state === "paused" && job.pause_reason ? pauseReason(job.pause_reason) : null)));
  }

  async function load(reset) {
    if (loading) return;
    loading = true;
    if (reset) offset = 0;
    try {
      const page = await API.get(`/jobs${API.qs({ limit: PAGE, offset })}`);
      const items = page.items;
      const rows = items.map(row);
      if (reset) body.replaceChildren(...rows);
      else body.append(...rows);
      offset += items.length;
      const total = page.total;
      more.hidden = offset >= total;
      empty.hidden = total > 0;
      table.hidden = total === 0;
    } catch (err) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: "6", class: "error" }, err.message)));
    } finally {
      loading = false;
    }
  }
  more.addEventListener("click", () => load(false));

  view.append(h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Jobs")),
    h("section", { class: "panel" }, empty, table, more));
  await load(true);

  // A job event updates its row in place; a new job reloads the first page.
  const offJob = live.on("job", (msg) => {
    const { type: _t, ...job } = msg;
    const tr = body.querySelector(`tr[data-job-id="${CSS.escape(String(job.id))}"]`);
    if (tr) {
      if (tr.dataset.state !== job.state || job.state !== "running") tr.replaceWith(row(job));
      else tr.children[2].textContent = `${Math.round(pct(job.progress))} %`;
    } else {
      load(true);
    }
  });
  const offOpen = live.on("open", () => load(true));
  return () => {
    offJob();
    offOpen();
  };
}
