// First run: while no admin exists, the person at the machine types the one-time setup code
// that laserd printed to its log, and creates the first administrator.

import * as API from "../api.js";
import { setupDone, signedIn } from "../app.js";
import { clearErrors, field, formError, h, showApiError, showFieldError } from "../dom.js";

export function render(view) {
  const code = h("input", { name: "setup_code", autocomplete: "one-time-code", required: true, spellcheck: "false", autocapitalize: "off" });
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: "8" });
  const confirm = h("input", { name: "confirm", type: "password", autocomplete: "new-password", required: true });
  const submit = h("button", { class: "btn btn-primary", type: "submit" }, "Create administrator");

  const form = h("form", { class: "stack", novalidate: true },
    formError(),
    field("Setup code", code, { hint: "Printed by laserd at start, in its log (journalctl -u laserd) or console: “setup code: …”." }),
    field("Username", username),
    field("Email", email),
    field("Password", password, { hint: "At least 8 characters." }),
    field("Repeat password", confirm),
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    if (password.value !== confirm.value) {
      showFieldError(form, "confirm", "The two passwords differ.");
      confirm.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      await API.setup({ setup_code: code.value.trim(), username: username.value.trim(), email: email.value.trim(), password: password.value });
      setupDone();
      const data = await API.login(username.value.trim(), password.value);
      await signedIn(data.user);
    } catch (err) {
      showApiError(form, err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Create administrator";
    }
  });

  view.append(
    h("section", { class: "auth-card panel" },
      h("h1", { tabindex: "-1" }, "Welcome to laserd"),
      h("p", { class: "lead" }, "This machine has no administrator yet. Create the first account to take charge of it."),
      form,
    ),
  );
  code.focus();
}
