// Administration: accounts (approve, disable, roles), the controller's $ settings, and a
// console that shows the live serial traffic and sends one raw line at a time.

import * as API from "../api.js";
import { clearErrors, field, formError, h, showApiError, toast } from "../dom.js";
import { when } from "../format.js";
import { live } from "../live.js";
import { getState } from "../store.js";

const TABS = [["users", "Users"], ["settings", "Controller settings"], ["console", "Console"]];

// Short meanings of GRBL 1.1's settings, in our words, so the table is readable at the machine.
const GRBL_SETTINGS = {
  $0: "Step pulse length (µs)", $1: "Step idle delay (ms)", $2: "Step pulse invert (mask)", $3: "Direction invert (mask)",
  $4: "Invert step enable", $5: "Invert limit pins", $6: "Invert probe pin", $10: "Status report options (mask)",
  $11: "Junction deviation (mm)", $12: "Arc tolerance (mm)", $13: "Report in inches", $20: "Soft limits",
  $21: "Hard limits", $22: "Homing cycle", $23: "Homing direction invert (mask)", $24: "Homing locate feed (mm/min)",
  $25: "Homing search seek (mm/min)", $26: "Homing switch debounce (ms)", $27: "Homing pull-off (mm)",
  $30: "Maximum spindle/laser S value", $31: "Minimum spindle/laser S value", $32: "Laser mode",
  $100: "X steps per mm", $101: "Y steps per mm", $102: "Z steps per mm",
  $110: "X maximum rate (mm/min)", $111: "Y maximum rate (mm/min)", $112: "Z maximum rate (mm/min)",
  $120: "X acceleration (mm/s²)", $121: "Y acceleration (mm/s²)", $122: "Z acceleration (mm/s²)",
  $130: "X maximum travel (mm)", $131: "Y maximum travel (mm)", $132: "Z maximum travel (mm)",
};

export function render(view, { sub }) {
  const tab = TABS.some(([k]) => k === sub) ? sub : "users";
  const nav = h("nav", { class: "tabs", "aria-label": "Administration" },
    TABS.map(([k, label]) => h("a", { href: `#/admin/${k}`, "aria-current": k === tab ? "page" : false }, label)));
  const body = h("div");
  view.append(h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Administration")), nav, body);
  if (tab === "settings") return controllerSettings(body);
  if (tab === "console") return consoleTab(body);
  return users(body);
}

function users(body) {
  const tbody = h("tbody");
  const table = h("table", { class: "table users-table" },
    h("caption", { class: "sr-only" }, "User accounts"),
    h("thead", {}, h("tr", {}, ["User", "Email", "Role", "Status", "Last sign-in", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    tbody);
  const me = getState().user;

  async function patchUser(u, change, okText) {
    try {
      await API.patch(`/users/${encodeURIComponent(u.id)}`, change);
      toast(okText, "ok");
    } catch (err) {
      toast(err.message, "error");
    }
    load();
  }

  function row(u) {
    const role = h("select", { name: "role", "aria-label": `Role of ${u.username}` },
      ["guest", "user", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
    role.addEventListener("change", () => patchUser(u, { role: role.value }, `${u.username} is now ${role.value}.`));
    const actions = h("div", { class: "row" });
    if (u.status === "pending") {
      const approve = h("button", { type: "button", class: "btn btn-small btn-primary" }, "Approve");
      approve.addEventListener("click", () => patchUser(u, { status: "active" }, `${u.username} can now sign in.`));
      actions.append(approve);
    }
    if (u.status !== "disabled") {
      const disable = h("button", { type: "button", class: "btn btn-small", disabled: u.id === me.id }, u.status === "pending" ? "Reject" : "Disable");
      if (u.id === me.id) disable.title = "You cannot disable your own account.";
      disable.addEventListener("click", () => patchUser(u, { status: "disabled" }, `${u.username} is disabled.`));
      actions.append(disable);
    } else {
      const enable = h("button", { type: "button", class: "btn btn-small" }, "Enable");
      enable.addEventListener("click", () => patchUser(u, { status: "active" }, `${u.username} is active again.`));
      actions.append(enable);
    }
    const remove = h("button", { type: "button", class: "btn btn-small btn-danger", disabled: u.id === me.id }, "Delete");
    if (u.id === me.id) remove.title = "You cannot delete your own account.";
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete ${u.username}? Their projects and files go too.`)) return;
      try {
        await API.del(`/users/${encodeURIComponent(u.id)}`);
      } catch (err) {
        toast(err.message, "error");
      }
      load();
    });
    actions.append(remove);
    return h("tr", { dataset: { user: u.username, status: u.status } },
      h("td", { "data-label": "User" }, h("span", {}, h("strong", {}, u.username), u.full_name ? h("span", { class: "muted" }, ` ${u.full_name}`) : null)),
      h("td", { "data-label": "Email" }, h("span", {}, u.email, u.email_verified ? "" : h("span", { class: "muted" }, " (unverified)"))),
      h("td", { "data-label": "Role" }, role),
      h("td", { "data-label": "Status" }, h("span", { class: `badge badge-user-${u.status}` }, u.status)),
      h("td", { "data-label": "Last sign-in" }, when(u.last_login_at)),
      h("td", { "data-label": "Actions" }, actions));
  }

  async function load() {
    try {
      const page = await API.get(`/users${API.qs({ limit: 200 })}`);
      const items = page.items;
      items.sort((a, b) => (a.status === "pending" ? -1 : 0) - (b.status === "pending" ? -1 : 0));
      tbody.replaceChildren(...items.map(row));
    } catch (err) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: "6", class: "error" }, err.message)));
    }
  }

  const username = h("input", { name: "username", required: true, autocomplete: "off" });
  const email = h("input", { name: "email", type: "email", required: true, autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" });
  const role = h("select", { name: "role" }, ["user", "guest", "admin"].map((r) => h("option", { value: r }, r)));
  const create = h("button", { type: "submit", class: "btn btn-primary" }, "Add user");
  const form = h("form", { class: "form-grid", novalidate: true }, formError(),
    field("Username", username), field("Email", email), field("Password", password), field("Role", role),
    h("div", { class: "actions wide" }, create));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    create.disabled = true;
    try {
      await API.post("/users", { username: username.value.trim(), email: email.value.trim(), password: password.value, role: role.value, status: "active" });
      form.reset();
      toast("User added.", "ok");
      load();
    } catch (err) {
      showApiError(form, err);
    } finally {
      create.disabled = false;
    }
  });

  body.append(h("section", { class: "panel" }, h("h2", {}, "Users"), table),
    h("details", { class: "panel disclosure" }, h("summary", {}, h("span", { class: "h2" }, "Add a user")), form));
  load();
  return null;
}

function controllerSettings(body) {
  const tbody = h("tbody");
  const form = h("form", { class: "stack", novalidate: true });
  const save = h("button", { type: "submit", class: "btn btn-primary", disabled: true }, "Write changed settings");
  const reload = h("button", { type: "button", class: "btn" }, "Read again");
  const status = h("p", { class: "muted", role: "status" });
  let original = {};

  async function load() {
    status.textContent = "Reading the controller…";
    try {
      original = await API.get("/machine/settings");
      const keys = Object.keys(original).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
      tbody.replaceChildren(...keys.map((k) => {
        const id = `set-${k.slice(1)}`;
        const input = h("input", { id, name: k, value: String(original[k]), inputmode: "decimal", class: "num" });
        input.addEventListener("input", () => {
          input.classList.toggle("changed", input.value !== String(original[k]));
          save.disabled = !form.querySelector("input.changed");
        });
        const err = h("p", { class: "field-error", id: `${id}-err`, hidden: true });
        input.setAttribute("aria-describedby", `${id}-err`);
        return h("tr", {},
          h("th", { scope: "row", class: "mono" }, h("label", { for: id }, k)),
          h("td", {}, GRBL_SETTINGS[k] || ""),
          h("td", {}, input, err));
      }));
      status.textContent = keys.length ? "" : "The controller reported no settings.";
      save.disabled = true;
    } catch (err) {
      tbody.replaceChildren();
      status.textContent = err.status === 503 ? "The controller is disconnected; settings cannot be read." : err.message;
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    const changed = {};
    for (const input of form.querySelectorAll("input.changed")) {
      const v = Number(input.value);
      changed[input.name] = Number.isFinite(v) && input.value.trim() !== "" ? v : input.value;
    }
    if (!Object.keys(changed).length) return;
    if (!window.confirm(`Write ${Object.keys(changed).join(", ")} to the controller?`)) return;
    save.disabled = true;
    try {
      await API.put("/machine/settings", changed);
      toast("Settings written.", "ok");
      load();
    } catch (err) {
      showApiError(form, err);
      save.disabled = false;
    }
  });
  reload.addEventListener("click", load);
  form.append(formError(),
    h("table", { class: "table settings-table" },
      h("caption", { class: "sr-only" }, "GRBL settings"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Setting"), h("th", { scope: "col" }, "Meaning"), h("th", { scope: "col" }, "Value"))),
      tbody),
    h("div", { class: "actions" }, save, reload));
  body.append(h("section", { class: "panel" }, h("h2", {}, "Controller settings"),
    h("p", { class: "muted" }, "GRBL's $ settings, read from the controller. Laser mode ($32 = 1) is required to run jobs."), status, form));
  load();
  return null;
}

function consoleTab(body) {
  const MAX_LINES = 500;
  const out = h("pre", { class: "console", role: "log", "aria-live": "polite", "aria-label": "Controller console", tabindex: "0" });
  const line = h("input", { name: "line", autocomplete: "off", spellcheck: "false", class: "mono", maxlength: "80" });
  const send = h("button", { type: "submit", class: "btn btn-primary" }, "Send");
  const lastReply = h("pre", { class: "console reply", "aria-live": "polite", "aria-label": "Reply to your last command" });
  const history = [];
  let histPos = 0;
  line.id = "console-line";
  line.setAttribute("aria-describedby", "console-hint");
  const form = h("form", { class: "console-form", novalidate: true }, formError(),
    h("label", { for: "console-line" }, "Command"),
    h("div", { class: "row console-row" }, line, send),
    h("p", { class: "hint", id: "console-hint" }, "One line to the controller, e.g. $$ (settings), $I (build info), $G (modes), $# (offsets). Up and Down recall earlier lines."));

  function write(text, cls = "") {
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.append(h("span", { class: cls }, `${text}\n`));
    while (out.childNodes.length > MAX_LINES) out.firstChild.remove();
    if (atBottom) out.scrollTop = out.scrollHeight;
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = line.value.trim();
    if (!text) return;
    history.push(text);
    histPos = history.length;
    line.value = "";
    send.disabled = true;
    try {
      const reply = await API.post("/machine/console", { line: text });
      const lines = reply.lines;
      lastReply.replaceChildren(h("span", { class: "sent" }, `> ${text}\n`), lines.join("\n") || "(no reply)");
    } catch (err) {
      lastReply.replaceChildren(h("span", { class: "sent" }, `> ${text}\n`), h("span", { class: "err" }, err.message));
    } finally {
      send.disabled = false;
      line.focus();
    }
  });
  line.addEventListener("keydown", (e) => {
    if (e.key === "ArrowUp" && histPos > 0) line.value = history[--histPos];
    else if (e.key === "ArrowDown" && histPos < history.length) line.value = history[++histPos] || "";
    else return;
    e.preventDefault();
  });
  const clear = h("button", { type: "button", class: "btn btn-small" }, "Clear");
  clear.addEventListener("click", () => out.replaceChildren());
  body.append(h("section", { class: "panel" },
    h("div", { class: "row spread" }, h("h2", {}, "Console"), clear),
    h("p", { class: "muted" }, "Live lines between laserd and the controller (status reports are left out)."),
    out, form, h("h3", {}, "Reply"), lastReply));
  const off = live.on("log", (msg) => {
    const sent = msg.direction === "tx";
    write(`${sent ? "> " : ""}${msg.line ?? ""}`, sent ? "sent" : "");
  });
  return () => off();
}
