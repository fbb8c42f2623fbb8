// Small DOM helpers. Everything is built with createElement and text nodes, never from HTML
// strings, so user data (file names, project names, console lines) cannot inject markup and
// nothing trips the Content-Security-Policy (no style="" attributes, no inline handlers).

/**
 * Build an element: h("button", {class: "btn", onclick: fn, disabled: true}, "Label").
 * Keys starting with "on" become listeners; "class", "for", "text" and "dataset" are
 * shortcuts; false/null/undefined values are skipped; other keys become attributes.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "for") {
      el.htmlFor = value;
    } else if (key === "text") {
      el.textContent = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value") {
      el.value = value;
    } else if (key === "checked" || key === "selected" || key === "disabled") {
      el[key] = Boolean(value);
      if (key === "disabled") el.toggleAttribute("disabled", Boolean(value));
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (strings, nodes, arrays, nullish skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace all children of el. */
export function mount(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** Set the text of an element only when it changed (live values update many times a second). */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

/**
 * Enable or disable a control with the reason shown as its tooltip and, when a reason element
 * is given, as visible text beside it (a disabled button with no explanation is a dead end).
 */
export function setEnabled(button, enabled, reason = "", reasonEl = null) {
  button.disabled = !enabled;
  if (enabled) button.removeAttribute("title");
  else if (reason) button.title = reason;
  if (reasonEl) setText(reasonEl, enabled ? "" : reason);
}

/** A labelled form field: label, control, hint and an inline error slot (aria-describedby). */
export function field(label, control, { hint = "", wide = false } = {}) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const err = h("p", { class: "field-error", id: `${id}-err`, role: "alert", hidden: true });
  const described = [`${id}-err`];
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${id}-hint` }, hint);
    described.push(`${id}-hint`);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  const wrap = h("div", { class: ["field", wide && "wide", control.type === "checkbox" && "check"] });
  if (control.type === "checkbox") {
    append(wrap, [h("label", { for: id, class: "check-label" }, control, " ", label), hintEl, err]);
  } else {
    append(wrap, [h("label", { for: id }, label), control, hintEl, err]);
  }
  return wrap;
}

/** Clear every inline field error inside a form. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const banner = form.querySelector(".form-error");
  if (banner) {
    banner.hidden = true;
    banner.textContent = "";
  }
}

/** Show one error next to the control whose name is the dotted field path. */
export function showFieldError(form, name, message) {
  const control = findControl(form, name);
  if (!control) return false;
  control.setAttribute("aria-invalid", "true");
  const err = form.querySelector(`#${CSS.escape(control.id)}-err`);
  if (!err) return false;
  err.textContent = message;
  err.hidden = false;
  return true;
}

/**
 * Map an API error onto a form: 422 details go beside their fields (a detail's field may carry a
 * prefix such as "body." or "laser." that the form does not use, so the longest matching suffix
 * wins); the message and any detail without a field go to the form's banner.
 */
export function showApiError(form, error) {
  clearErrors(form);
  const leftovers = [];
  let firstInvalid = null;
  if (Array.isArray(error?.details)) {
    for (const d of error.details) {
      const name = String(d.field ?? "");
      if (name && showFieldError(form, name, d.message)) {
        firstInvalid ||= findControl(form, name);
      } else leftovers.push(name ? `${name}: ${d.message}` : d.message);
    }
  }
  const banner = form.querySelector(".form-error");
  const text = firstInvalid && !leftovers.length
    ? "Please correct the highlighted fields."
    : [error?.message || "Something went wrong.", ...leftovers].join(" ");
  if (banner) {
    banner.textContent = text;
    banner.hidden = false;
  }
  (firstInvalid || banner)?.focus?.();
}

function findControl(form, name) {
  const parts = name.split(".");
  for (let i = 0; i < parts.length; i += 1) {
    const candidate = parts.slice(i).join(".");
    const control = form.querySelector(`[name="${CSS.escape(candidate)}"]`);
    if (control) return control;
  }
  return null;
}

/** A banner slot for form-wide errors; focusable so screen readers announce it. */
export function formError() {
  return h("p", { class: "form-error", role: "alert", tabindex: "-1", hidden: true });
}

/** Transient notice in the corner (status for screen readers via aria-live on the region). */
export function toast(message, kind = "info") {
  const region = document.getElementById("toasts");
  if (!region) return;
  const item = h("div", { class: `toast ${kind}` }, message);
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** Set a CSS custom property from script (allowed by CSP, unlike style="" in markup). */
export function setVar(el, name, value) {
  el.style.setProperty(name, value);
}
