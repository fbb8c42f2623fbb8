// The list of projects and the form that starts a new one.

import * as API from "../api.js";
import { go } from "../app.js";
import { clearErrors, field, formError, h, showApiError, showFieldError } from "../dom.js";
import { when } from "../format.js";
import { imageMaterials, materialLabel } from "../laser_form.js";
import { can } from "../store.js";

const PAGE = 50;

export async function render(view) {
  const list = h("ul", { class: "cards", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "btn", hidden: true }, "Show more");
  const empty = h("p", { class: "muted", hidden: true }, "No projects yet.");
  let offset = 0;

  async function load(reset = false) {
    if (reset) {
      offset = 0;
      list.replaceChildren();
    }
    more.disabled = true;
    try {
      const page = await API.get(`/projects${API.qs({ limit: PAGE, offset })}`);
      for (const p of page.items) list.append(card(p));
      offset += page.items.length;
      more.hidden = offset >= page.total;
      empty.hidden = page.total > 0;
    } catch (err) {
      list.append(h("li", { class: "panel error" }, err.message));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", () => load());

  const creator = can.control() ? createForm() : null;
  view.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Projects")),
    creator || h("p", { class: "notice" }, "Guests cannot create projects."),
    h("section", { "aria-label": "Your projects" }, empty, list, more),
  );
  await load(true);
  // Opened for a first project; never closed here: the user may have opened it meanwhile.
  if (creator && list.children.length === 0) creator.open = true;
}

function card(p) {
  return h("li", { class: "card" },
    h("a", { href: `#/projects/${encodeURIComponent(p.id)}`, class: "card-link" },
      h("span", { class: "card-title" }, p.name),
      p.description ? h("span", { class: "card-text" }, p.description) : null,
      h("span", { class: "card-meta" }, `Updated ${when(p.updated_at || p.created_at)}`,
        p.laser ? ` · ${p.laser.mode} · ${p.laser.power_max_pct}\u00a0% · ${p.laser.speed_mm_min}\u00a0mm/min` : "")));
}

function createForm() {
  const name = h("input", { name: "name", required: true, maxlength: "200" });
  const description = h("textarea", { name: "description", rows: "2", maxlength: "2000" });
  const preset = h("select", { name: "material_id" }, h("option", { value: "" }, "laserd's defaults"));
  imageMaterials()
    .then((list) => preset.append(...list.map((m) => h("option", { value: String(m.id) }, materialLabel(m)))))
    .catch(() => {});
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create project");
  const form = h("form", { class: "form-grid", novalidate: true },
    formError(),
    field("Name", name),
    field("Start from material", preset, { hint: "Its image settings fill the project's; you can change every laser setting on the project page." }),
    field("Description (optional)", description, { wide: true }),
    h("div", { class: "actions wide" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!name.value.trim()) {
      showFieldError(form, "name", "Give the project a name.");
      name.focus();
      return;
    }
    submit.disabled = true;
    try {
      const body = { name: name.value.trim(), description: description.value.trim() };
      const p = await API.post("/projects", body);
      if (preset.value) await API.patch(`/projects/${encodeURIComponent(p.id)}`, { material_id: Number(preset.value) });
      go(`#/projects/${encodeURIComponent(p.id)}`);
    } catch (err) {
      showApiError(form, err);
    } finally {
      submit.disabled = false;
    }
  });
  return h("details", { class: "panel disclosure" },
    h("summary", {}, h("span", { class: "h2" }, "New project")), form);
}
