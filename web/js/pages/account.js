// The signed-in person's own account: profile, password, and API keys for LAN clients.

import * as API from "../api.js";
import { clearErrors, field, formError, h, showApiError, showFieldError, toast } from "../dom.js";
import { when } from "../format.js";
import { getState, update } from "../store.js";

const ROLES = ["guest", "user", "admin"];

export async function render(view) {
  let me;
  try {
    me = await API.get("/auth/me");
    update({ user: me });
  } catch (err) {
    view.append(h("p", { class: "panel error" }, err.message));
    return null;
  }
  const keys = apiKeys(me);
  view.append(
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Account")),
    h("div", { class: "two-col" },
      h("div", { class: "col" }, profile(me), password(keys)),
      h("div", { class: "col" }, keys.section)),
  );
  return null;
}

function profile(me) {
  const email = h("input", { name: "email", type: "email", value: me.email || "", autocomplete: "email" });
  const fullName = h("input", { name: "full_name", value: me.full_name || "", autocomplete: "name" });
  // A new address needs the password: reset mail goes there, so a borrowed session alone
  // must not be able to redirect it.
  const confirmPw = h("input", { name: "current_password", type: "password", autocomplete: "current-password" });
  const confirmField = field("Your password (to change the email)", confirmPw, { hint: "Outstanding reset and verification links end with the change." });
  const emailChanged = () => email.value.trim().toLowerCase() !== (me.email || "").toLowerCase();
  confirmField.hidden = true;
  email.addEventListener("input", () => { confirmField.hidden = !emailChanged(); });
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save profile");
  const verify = h("button", { type: "button", class: "btn btn-small", hidden: Boolean(me.email_verified) }, "Send verification email");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    try {
      await API.post("/auth/verify-email/request");
      toast("Verification email sent.", "ok");
    } catch (err) {
      toast(err.message, "error");
    } finally {
      verify.disabled = false;
    }
  });
  const form = h("form", { class: "stack", novalidate: true },
    formError(),
    h("dl", { class: "facts" },
      h("dt", {}, "Username"), h("dd", {}, me.username),
      h("dt", {}, "Role"), h("dd", {}, me.role),
      h("dt", {}, "Email"), h("dd", {}, me.email_verified ? "verified" : "not verified ", verify),
      h("dt", {}, "Member since"), h("dd", {}, when(me.created_at)),
      h("dt", {}, "Last sign-in"), h("dd", {}, when(me.last_login_at))),
    field("Full name", fullName),
    field("Email", email, { hint: "A new address must be verified again." }),
    confirmField,
    h("div", { class: "actions" }, save));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    save.disabled = true;
    try {
      const body = { email: email.value.trim(), full_name: fullName.value.trim() };
      if (emailChanged() && confirmPw.value) body.current_password = confirmPw.value;
      const updated = await API.patch("/auth/me", body);
      me = updated;
      confirmPw.value = "";
      confirmField.hidden = true;
      update({ user: { ...getState().user, ...updated } });
      toast("Profile saved.", "ok");
    } catch (err) {
      showApiError(form, err);
    } finally {
      save.disabled = false;
    }
  });
  return h("section", { class: "panel", "aria-labelledby": "profile-h" }, h("h2", { id: "profile-h" }, "Profile"), form);
}

/** "API keys still valid: a, b." or that none is: said after any action that may revoke keys. */
function keysLeft(items) {
  if (!items.length) return "No API key of this account works any more.";
  return `API keys still valid: ${items.map((k) => `“${k.name}”`).join(", ")}.`;
}

function password(keys) {
  const current = h("input", { name: "current_password", type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: "8" });
  const again = h("input", { name: "again", type: "password", autocomplete: "new-password", required: true });
  const revokeKeys = h("input", { name: "revoke_api_keys", type: "checkbox", checked: true });
  revokeKeys.defaultChecked = true; // form.reset() goes back to revoking, the safe default
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Change password");
  const outcome = h("p", { class: "notice", role: "status", hidden: true, id: "pw-outcome" });
  const form = h("form", { class: "stack", novalidate: true },
    formError(),
    field("Current password", current),
    field("New password", next, { hint: "At least 8 characters. Your other sign-ins will end." }),
    field("Repeat new password", again),
    field("Also revoke my API keys", revokeKeys, { hint: "Do this if someone else may have used your account: a key made with a stolen sign-in outlives the new password otherwise." }),
    h("div", { class: "actions" }, save),
    outcome);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (next.value !== again.value) {
      showFieldError(form, "again", "The two passwords differ.");
      again.focus();
      return;
    }
    save.disabled = true;
    try {
      await API.post("/auth/change-password", { current_password: current.value, new_password: next.value, revoke_api_keys: revokeKeys.checked });
      form.reset();
      const left = await keys.load();
      outcome.textContent = `Password changed. Other sign-ins were ended. ${keysLeft(left)}`;
      outcome.hidden = false;
      toast("Password changed. Other sign-ins were ended.", "ok");
    } catch (err) {
      showApiError(form, err);
    } finally {
      save.disabled = false;
    }
  });
  const allKeys = h("input", { name: "logout_all_revoke_api_keys", type: "checkbox", checked: true });
  const all = h("button", { type: "button", class: "btn" }, "Sign out everywhere");
  all.addEventListener("click", async () => {
    // This sign-in ends too, so say now which keys will keep working afterwards.
    const left = allKeys.checked ? [] : await keys.load();
    const what = allKeys.checked ? "and revoke every API key" : "";
    if (!window.confirm(`End every sign-in of this account, including this one${what ? `, ${what}` : ""}? ${keysLeft(left)}`)) return;
    try {
      await API.post("/auth/logout-all", { revoke_api_keys: allKeys.checked });
    } catch (err) {
      toast(err.message, "error");
    }
    location.reload();
  });
  return h("section", { class: "panel", "aria-labelledby": "pw-h" }, h("h2", { id: "pw-h" }, "Password"), form, h("hr"),
    field("Revoke my API keys too", allKeys), all);
}

function apiKeys(me) {
  const tbody = h("tbody");
  const table = h("table", { class: "table" },
    h("caption", { class: "sr-only" }, "Your API keys"),
    h("thead", {}, h("tr", {}, ["Name", "Role", "Created", "Last used", "Expires", ""].map((t) => h("th", { scope: "col" }, t)))), tbody);
  const empty = h("p", { class: "muted" }, "No API keys.");
  const shown = h("div", { class: "notice key-once", role: "status", hidden: true });

  /** Redraw the table; the keys listed (the first page), [] when they cannot be read. */
  async function load() {
    try {
      const data = await API.get("/auth/api-keys?limit=200");
      const items = data.items;
      empty.hidden = items.length > 0;
      table.hidden = items.length === 0;
      tbody.replaceChildren(...items.map((k) => {
        const revoke = h("button", { type: "button", class: "btn btn-small btn-danger" }, "Revoke");
        revoke.setAttribute("aria-label", `Revoke key ${k.name}`);
        revoke.addEventListener("click", async () => {
          if (!window.confirm(`Revoke the key “${k.name}”? Clients using it stop working.`)) return;
          try {
            await API.del(`/auth/api-keys/${encodeURIComponent(k.id)}`);
            load();
          } catch (err) {
            toast(err.message, "error");
          }
        });
        return h("tr", {},
          h("td", { "data-label": "Name" }, h("span", {}, k.name, k.prefix ? h("span", { class: "muted mono" }, ` ${k.prefix}…`) : null)),
          h("td", { "data-label": "Role" }, k.role),
          h("td", { "data-label": "Created" }, when(k.created_at)),
          h("td", { "data-label": "Last used" }, when(k.last_used_at)),
          h("td", { "data-label": "Expires" }, k.expires_at ? when(k.expires_at) : "never"),
          h("td", {}, revoke));
      }));
      return items;
    } catch (err) {
      empty.hidden = false;
      empty.textContent = err.message;
      return [];
    }
  }

  const name = h("input", { name: "name", required: true, maxlength: "100" });
  const role = h("select", { name: "role" }, ROLES.slice(0, ROLES.indexOf(me.role) + 1).map((r) => h("option", { value: r, selected: r === me.role }, r)));
  const days = h("input", { name: "expires_in_days", type: "number", min: "1", max: "3650", step: "1", inputmode: "numeric" });
  const create = h("button", { type: "submit", class: "btn btn-primary" }, "Create key");
  const form = h("form", { class: "form-grid", novalidate: true },
    formError(),
    field("Name", name, { hint: "Where the key is used, e.g. “LightBurn on the shop PC”." }),
    field("Role", role, { hint: "At most your own role." }),
    field("Expires after (days)", days, { hint: "Empty: never expires." }),
    h("div", { class: "actions wide" }, create));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!name.value.trim()) {
      showFieldError(form, "name", "Give the key a name.");
      name.focus();
      return;
    }
    create.disabled = true;
    try {
      const body = { name: name.value.trim(), role: role.value };
      if (days.value) body.expires_in_days = Number(days.value);
      const k = await API.post("/auth/api-keys", body);
      showOnce(k.key);
      form.reset();
      load();
    } catch (err) {
      showApiError(form, err);
    } finally {
      create.disabled = false;
    }
  });

  function showOnce(secret) {
    const out = h("input", { class: "mono", readonly: true, value: secret, id: "new-key", "aria-label": "New API key" });
    const copy = h("button", { type: "button", class: "btn btn-primary" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(secret);
      } catch {
        // navigator.clipboard needs a secure context; a LAN http:// page falls back to a selection copy.
        out.select();
        document.execCommand("copy");
      }
      copy.textContent = "Copied";
      toast("Key copied to the clipboard.", "ok");
    });
    const done = h("button", { type: "button", class: "btn" }, "I have stored it");
    done.addEventListener("click", () => {
      shown.hidden = true;
      shown.replaceChildren();
    });
    shown.replaceChildren(
      h("h3", {}, "Your new API key"),
      h("p", {}, "Copy it now: laserd stores only a hash and cannot show it again. Send it as the X-Api-Key header."),
      h("div", { class: "row" }, out, copy), done);
    shown.hidden = false;
    out.focus();
    out.select();
  }

  load();
  const section = h("section", { class: "panel", "aria-labelledby": "keys-h" },
    h("h2", { id: "keys-h" }, "API keys"),
    h("p", { class: "muted" }, "Long-lived keys for programs on your network (LightBurn scripts, Home Assistant, your own tools). ",
      "A password reset revokes them all; a password change and “Sign out everywhere” do unless you untick it. ",
      h("a", { href: "/api/v1/docs", target: "_blank", rel: "noopener" }, "API documentation")),
    shown, empty, table, h("h3", {}, "New key"), form);
  return { section, load };
}
