// Sign in, create an account, and recover a forgotten password.

import * as API from "../api.js";
import { signedIn } from "../app.js";
import { clearErrors, field, formError, h, showApiError, showFieldError, toast } from "../dom.js";

export function render(view, { page }) {
  if (page === "register") return renderRegister(view);
  return renderLogin(view);
}

function renderLogin(view) {
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off", spellcheck: "false" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Sign in");
  const form = h("form", { class: "stack", novalidate: true, "aria-label": "Sign in" },
    formError(),
    field("Username or email", username),
    field("Password", password),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (!username.value.trim() || !password.value) {
      if (!username.value.trim()) showFieldError(form, "username", "Enter your username or email.");
      if (!password.value) showFieldError(form, "password", "Enter your password.");
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      const data = await API.login(username.value.trim(), password.value);
      await signedIn(data.user);
    } catch (err) {
      const messages = {
        401: "Wrong username or password.",
        403: err.message || "This account cannot sign in yet.",
        423: "Too many failed attempts from this device: it is locked out of this account for a while. Try later, from another device, or ask an admin.",
        429: "Too many attempts. Wait a moment and try again.",
      };
      showApiError(form, { ...err, message: messages[err.status] || err.message, details: err.details });
      password.select();
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  });

  view.append(
    h("section", { class: "auth-card panel" },
      h("h1", { tabindex: "-1" }, "Sign in"),
      form,
      h("p", { class: "muted" }, "No account yet? ", h("a", { href: "#/register" }, "Create one")),
      resetBox(),
    ),
  );
  username.focus();
}

function resetBox() {
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const ask = h("button", { class: "btn", type: "submit" }, "Send reset link");
  const requestForm = h("form", { class: "stack", novalidate: true }, formError(), field("Email of the account", email), h("div", { class: "actions" }, ask));
  requestForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(requestForm);
    ask.disabled = true;
    try {
      await API.api("POST", "/auth/password-reset/request", { email: email.value.trim() }, { auth: false });
      toast("If that address belongs to an account, a reset code is on its way.", "ok");
    } catch (err) {
      showApiError(requestForm, err);
    } finally {
      ask.disabled = false;
    }
  });

  const tokenInput = h("input", { name: "token", autocomplete: "one-time-code", required: true, spellcheck: "false" });
  const newPassword = h("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true });
  const confirmBtn = h("button", { class: "btn", type: "submit" }, "Set new password");
  const confirmForm = h("form", { class: "stack", novalidate: true }, formError(),
    field("Reset code from the email", tokenInput), field("New password", newPassword), h("div", { class: "actions" }, confirmBtn));
  confirmForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(confirmForm);
    confirmBtn.disabled = true;
    try {
      await API.api("POST", "/auth/password-reset/confirm", { token: tokenInput.value.trim(), new_password: newPassword.value }, { auth: false });
      toast("Password changed. Sign in with the new one.", "ok");
      confirmForm.reset();
    } catch (err) {
      showApiError(confirmForm, err);
    } finally {
      confirmBtn.disabled = false;
    }
  });
  return h("details", { class: "disclosure" }, h("summary", {}, "Forgot your password?"), requestForm, h("hr"), confirmForm);
}

function renderRegister(view) {
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off", spellcheck: "false" });
  const fullName = h("input", { name: "full_name", autocomplete: "name" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: "8" });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Create account");
  const result = h("div", { class: "notice", role: "status", hidden: true });
  const form = h("form", { class: "stack", novalidate: true },
    formError(),
    field("Username", username),
    field("Full name (optional)", fullName),
    field("Email", email),
    field("Password", password, { hint: "At least 8 characters." }),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      const body = { username: username.value.trim(), email: email.value.trim(), password: password.value };
      if (fullName.value.trim()) body.full_name = fullName.value.trim();
      const user = await API.register(body);
      if (user?.status === "active") {
        const data = await API.login(body.username, body.password);
        await signedIn(data.user);
        return;
      }
      form.hidden = true;
      result.hidden = false;
      result.replaceChildren(
        h("h2", {}, "Account created"),
        h("p", {}, "An admin must activate your account before you can sign in. Ask the person who runs this machine."),
        h("a", { class: "btn", href: "#/login" }, "Back to sign in"),
      );
      result.focus();
    } catch (err) {
      const msg = err.status === 403 ? "Registration is closed on this machine. Ask an admin for an account." : err.message;
      showApiError(form, { ...err, message: msg, details: err.details });
    } finally {
      submit.disabled = false;
    }
  });
  view.append(
    h("section", { class: "auth-card panel" },
      h("h1", { tabindex: "-1" }, "Create an account"),
      h("p", { class: "lead" }, "New accounts may need an admin's approval before they can sign in."),
      form,
      result,
      h("p", { class: "muted" }, "Already have an account? ", h("a", { href: "#/login" }, "Sign in")),
    ),
  );
  username.focus();
}
