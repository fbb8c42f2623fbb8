// The only module that talks HTTP to laserd. The access token lives in a module variable and
// nowhere else (never localStorage, sessionStorage or a URL); the refresh token is an HttpOnly
// cookie the script cannot read, so an injected script could at worst use a token until the
// tab closes, never carry it away for a month.

const BASE = "/api/v1";
const REFRESH_HEADERS = { "X-Refresh-Cookie": "1" };

let accessToken = null;
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, details = null, requestId = "") {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }
}

export function token() {
  return accessToken;
}

/** Called with the new token (or null when the session ended). */
export function onTokenChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setToken(value) {
  accessToken = value || null;
  for (const fn of listeners) fn(accessToken);
}

async function parseError(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const err = body?.error;
  if (err) return new ApiError(resp.status, err.code, err.message, err.details, err.request_id);
  const text = resp.status >= 500 ? "laserd could not answer; try again." : resp.statusText;
  return new ApiError(resp.status, `http_${resp.status}`, text || `HTTP ${resp.status}`);
}

/**
 * One API call. JSON in and out; 204 gives null. An access token rejected as expired or
 * invalid is renewed once through the refresh cookie and the call repeated.
 */
export async function api(method, path, body, { auth = true, headers = {}, retry = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth && accessToken) init.headers.Authorization = `Bearer ${accessToken}`;
  let resp;
  try {
    resp = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, "network", "laserd cannot be reached. Check the network and that the device is on.");
  }
  if (resp.status === 401 && auth && retry) {
    const err = await parseError(resp);
    if (["token_expired", "token_invalid", "not_authenticated"].includes(err.code) && (await refresh())) {
      return api(method, path, body, { auth, headers, retry: false });
    }
    throw err;
  }
  if (!resp.ok) throw await parseError(resp);
  if (resp.status === 204) return null;
  const type = resp.headers.get("Content-Type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

/**
 * New access token from the refresh cookie. Concurrent callers share one request, because a
 * refresh token is single-use: two parallel refreshes would look like reuse and end the login.
 */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const data = await api("POST", "/auth/refresh", {}, { auth: false, headers: REFRESH_HEADERS, retry: false });
        setToken(data.access_token);
        return data;
      } catch (err) {
        // Only a refusal ends the session; an unreachable or restarting laserd does not.
        if (err.status === 401 || err.status === 403) setToken(null);
        return null;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

export async function login(username, password) {
  const data = await api("POST", "/auth/login", { username, password }, { auth: false, headers: REFRESH_HEADERS, retry: false });
  setToken(data.access_token);
  return data;
}

export async function logout() {
  try {
    await api("POST", "/auth/logout", {}, { headers: REFRESH_HEADERS, retry: false });
  } finally {
    setToken(null);
  }
}

export function setup(body) {
  return api("POST", "/setup", body, { auth: false, headers: REFRESH_HEADERS, retry: false });
}

export function register(body) {
  return api("POST", "/auth/register", body, { auth: false, retry: false });
}

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Multipart upload with progress. fetch() cannot report upload progress, so this uses
 * XMLHttpRequest; onProgress gets a fraction 0..1. Resolves with the created file.
 */
export function upload(path, file, onProgress, retry = true) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    xhr.setRequestHeader("Accept", "application/json");
    if (accessToken) xhr.setRequestHeader("Authorization", `Bearer ${accessToken}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress?.(e.loaded / e.total);
    });
    xhr.addEventListener("load", async () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      const e = body?.error;
      if (xhr.status === 401 && retry && (await refresh())) {
        return upload(path, file, onProgress, false).then(resolve, reject);
      }
      reject(new ApiError(xhr.status, e?.code || `http_${xhr.status}`, e?.message || `Upload failed (HTTP ${xhr.status}).`, e?.details));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The upload was interrupted; check the connection.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "Upload cancelled.")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** An authenticated text download (a file's G-code for the live bed view). */
export async function text(path, retry = true) {
  const headers = accessToken ? { Authorization: `Bearer ${accessToken}` } : {};
  const resp = await fetch(BASE + path, { headers, credentials: "same-origin" });
  if (resp.status === 401 && retry && (await refresh())) return text(path, false);
  if (!resp.ok) throw await parseError(resp);
  return resp.text();
}

/**
 * An authenticated image as a blob: URL (an <img src> cannot send the bearer header). The
 * caller revokes it with URL.revokeObjectURL when the image leaves the page.
 */
export async function blobUrl(path, retry = true) {
  const headers = accessToken ? { Authorization: `Bearer ${accessToken}` } : {};
  const resp = await fetch(BASE + path, { headers, credentials: "same-origin" });
  if (resp.status === 401 && retry && (await refresh())) return blobUrl(path, false);
  if (!resp.ok) throw await parseError(resp);
  return URL.createObjectURL(await resp.blob());
}
