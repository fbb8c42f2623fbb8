// Offline, dependency-free explorer for laserd's OpenAPI document.
// The token typed here lives only in this page's memory: never stored, never put in a URL.

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const kid of kids) node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return node;
};

let doc = null;

function resolve(schema) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return doc.components.schemas[name] || {};
  }
  return schema || {};
}

function example(schema, depth = 0) {
  schema = resolve(schema);
  if (depth > 5) return null;
  if ("default" in schema) return schema.default;
  if (schema.enum) return schema.enum[0];
  if (schema.const !== undefined) return schema.const;
  const variants = schema.anyOf || schema.oneOf;
  if (variants) return example(variants.find((v) => v.type !== "null") || variants[0], depth + 1);
  switch (schema.type) {
    case "object": {
      const out = {};
      for (const [k, v] of Object.entries(schema.properties || {})) out[k] = example(v, depth + 1);
      return out;
    }
    case "array": return [example(schema.items || {}, depth + 1)];
    case "integer": return schema.minimum ?? 0;
    case "number": return schema.minimum ?? 0;
    case "boolean": return false;
    case "string": return schema.format === "email" ? "user@example.com" : "string";
    default: return null;
  }
}

function authHeaders() {
  const token = $("#token").value.trim();
  if (!token) return {};
  return $("#scheme").value === "apikey" ? { "X-Api-Key": token } : { Authorization: `Bearer ${token}` };
}

function operationView(path, method, op) {
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", {}, op.description));
  const params = el("div", { class: "params" });
  const inputs = {};
  for (const p of op.parameters || []) {
    const id = `${op.operationId}-${p.name}`;
    const input = el("input", { id, name: p.name });
    inputs[p.name] = { input, where: p.in };
    params.append(el("label", { for: id }, `${p.name} (${p.in}${p.required ? ", required" : ""}) `), input);
  }
  body.append(params);
  let bodyArea = null;
  const json = op.requestBody?.content?.["application/json"];
  if (json) {
    bodyArea = el("textarea", { "aria-label": "request body" });
    bodyArea.value = JSON.stringify(example(json.schema), null, 2);
    body.append(el("p", {}, "Request body (JSON):"), bodyArea);
  }
  const responses = el("pre", {}, Object.entries(op.responses).map(([c, r]) => `${c}  ${r.description}`).join("\n"));
  body.append(el("p", {}, "Responses:"), responses);
  const out = el("pre", { "aria-live": "polite" });
  const run = el("button", { type: "button" }, "Try it");
  run.addEventListener("click", async () => {
    let url = path;
    const query = new URLSearchParams();
    for (const [name, { input, where }] of Object.entries(inputs)) {
      if (where === "path") url = url.replace(`{${name}}`, encodeURIComponent(input.value));
      else if (input.value !== "") query.set(name, input.value);
    }
    if ([...query].length) url += `?${query}`;
    const init = { method: method.toUpperCase(), headers: authHeaders() };
    if (bodyArea) {
      init.headers["Content-Type"] = "application/json";
      init.body = bodyArea.value;
    }
    out.textContent = "…";
    try {
      const resp = await fetch(url, init);
      const text = await resp.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
      out.className = resp.ok ? "status-ok" : "status-err";
      out.textContent = `${resp.status} ${resp.statusText}\n\n${shown}`;
    } catch (err) {
      out.className = "status-err";
      out.textContent = String(err);
    }
  });
  if (!op.requestBody?.content?.["multipart/form-data"]) body.append(run);
  else body.append(el("p", {}, "Upload with multipart/form-data, field \"file\" (for example: curl -F file=@design.gcode)."));
  body.append(out);
  const summary = el("summary", {},
    el("span", { class: `method m-${method}` }, method.toUpperCase()),
    el("span", { class: "path" }, path),
    el("span", {}, op.summary || ""),
    el("span", { class: "role", title: "least role needed" }, op["x-role"]));
  const details = el("details", { "data-search": `${method} ${path} ${op.summary || ""}`.toLowerCase() }, summary, body);
  return details;
}

function render() {
  const main = $("#ops");
  main.textContent = "";
  const byTag = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, op));
    }
  }
  for (const [tag, views] of byTag) {
    main.append(el("h2", {}, tag), ...views);
  }
}

$("#filter").addEventListener("input", (ev) => {
  const q = ev.target.value.toLowerCase();
  for (const d of document.querySelectorAll("details")) d.hidden = q && !d.dataset.search.includes(q);
});

fetch("openapi.json")
  .then((r) => r.json())
  .then((d) => { doc = d; $("#version").textContent = d.info.version; render(); })
  .catch((err) => { $("#ops").textContent = `Could not load the API document: ${err}`; });
