// Start-up, the hash router and the page frame (navigation, connection pill, sign-out).
// Hash routes (#/projects/12) let laserd serve one index.html with no route per page.

import * as API from "./api.js";
import { h, mount, setText, toast } from "./dom.js";
import { machineWords } from "./format.js";
import { live } from "./live.js";
import { getState, mergeInterlocks, subscribe, update } from "./store.js";

const PUBLIC = new Set(["setup", "login", "register"]);
const PAGES = {
  setup: () => import("./pages/setup.js"),
  login: () => import("./pages/login.js"),
  register: () => import("./pages/login.js"),
  dashboard: () => import("./pages/dashboard.js"),
  projects: () => import("./pages/projects.js"),
  project: () => import("./pages/project.js"),
  materials: () => import("./pages/materials.js"),
  jobs: () => import("./pages/jobs.js"),
  account: () => import("./pages/account.js"),
  admin: () => import("./pages/admin.js"),
};

const TITLES = {
  setup: "First run", login: "Sign in", register: "Create an account", dashboard: "Dashboard",
  projects: "Projects", project: "Project", materials: "Materials", jobs: "Jobs", account: "Account", admin: "Administration",
};
const main = document.getElementById("main");
let pageTitle = "laserd";
let cleanup = null;
let setupNeeded = false;
let renderSeq = 0;

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [first = "dashboard", second] = parts;
  if (first === "projects" && second) return { page: "project", params: { id: second } };
  return { page: PAGES[first] ? first : "dashboard", params: { sub: second } };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  const seq = ++renderSeq;
  let { page, params } = parseHash();
  if (setupNeeded && page !== "setup") return go("#/setup");
  if (!setupNeeded && page === "setup") return go("#/login");
  const user = getState().user;
  if (!PUBLIC.has(page) && !user) return go("#/login");
  if ((page === "login" || page === "register") && user) return go("#/dashboard");
  if (page === "admin" && user?.role !== "admin") page = "dashboard";

  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error(err);
    }
    cleanup = null;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    const active = a.dataset.page === page || (page === "project" && a.dataset.page === "projects");
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  pageTitle = TITLES[page] || "laserd";
  paintTitle();
  let mod;
  try {
    mod = await PAGES[page]();
  } catch (err) {
    mount(main, h("p", { class: "panel error" }, `This page could not be loaded: ${err.message}`));
    return;
  }
  if (seq !== renderSeq) return;
  const view = h("div", { class: `page page-${page}` });
  mount(main, view);
  cleanup = (await mod.render(view, { ...params, page })) || null;
  if (seq !== renderSeq && cleanup) {
    cleanup();
    cleanup = null;
  }
  if (!main.contains(document.activeElement) || document.activeElement === document.body) {
    view.querySelector("h1")?.focus?.();
  }
}

/** Called by the login and setup pages once a token is held. */
export async function signedIn(user, { navigate = true } = {}) {
  const me = user || (await API.get("/auth/me"));
  update({ user: me });
  live.start();
  loadMachine();
  if (!navigate) return;
  const wanted = parseHash().page;
  go(PUBLIC.has(wanted) ? "#/dashboard" : location.hash || "#/dashboard");
}

/** The first picture of the machine comes by HTTP; afterwards only the WebSocket updates it. */
let machineLoading = null;
function loadMachine() {
  machineLoading ||= fetchMachine().finally(() => {
    machineLoading = null;
  });
  return machineLoading;
}

async function fetchMachine() {
  try {
    const [machine, interlocks] = await Promise.all([API.get("/machine"), API.get("/interlocks")]);
    if (!getState().machine) update({ machine, lastJob: machine?.job || getState().lastJob });
    mergeInterlocks(interlocks);
  } catch (err) {
    console.warn("machine status", err);
  }
}

function frame() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const logoutBtn = document.getElementById("logout");
  const pill = document.getElementById("link-status");

  logoutBtn.addEventListener("click", async () => {
    // The sign-in page is drawn once, after the server has ended the session: drawing it
    // before and again after the request cleared whatever the user had typed meanwhile.
    logoutBtn.disabled = true;
    live.stop();
    try {
      await API.logout();
    } catch {
      /* the token is dropped locally either way */
    }
    update({ user: null, machine: null, interlocks: [], lastJob: null });
    logoutBtn.disabled = false;
    go("#/login");
  });

  const paint = () => {
    const { user, machine } = getState();
    nav.hidden = !user;
    who.hidden = !user;
    logoutBtn.hidden = !user;
    pill.hidden = !user;
    nav.querySelector("[data-admin]").hidden = user?.role !== "admin";
    if (user) setText(who, `${user.username} · ${user.role}`);
    let text = "Offline";
    let cls = "pill pill-off";
    if (live.status === "connecting") {
      text = "Reconnecting…";
      cls = "pill pill-warn";
    } else if (live.status === "live") {
      const words = machineWords(machine);
      text = words.title;
      cls = `pill pill-${words.key}`;
    }
    setText(pill, text);
    if (pill.className !== cls) pill.className = cls;
    pill.title = live.status === "live" ? "Live connection to laserd" : "No live connection to laserd; retrying";
  };
  subscribe(paint);
  subscribe(paintTitle);
  live.addEventListener("status", paint);
  live.addEventListener("open", () => loadMachineIfMissing());
}

/** The tab title carries a running job's progress, so a background tab still tells it. */
function paintTitle() {
  const job = getState().machine?.job;
  const prefix = job && ["running", "paused", "waiting_start"].includes(job.state)
    ? `${job.state === "running" ? `${Math.floor((job.progress || 0) * 100)} %` : job.state === "paused" ? "Paused" : "Waiting"} · `
    : "";
  const title = `${prefix}${pageTitle} · laserd`;
  if (document.title !== title) document.title = title;
}

function loadMachineIfMissing() {
  if (!getState().interlocks.length && !machineLoading) loadMachine();
}

API.onTokenChange((tok) => {
  if (tok) {
    // A renewed token: the socket keeps working, but reconnect if it had given up.
    if (getState().user && live.status !== "live") live.start();
    return;
  }
  if (getState().user) {
    live.stop();
    update({ user: null, machine: null });
    toast("Your session ended. Please sign in again.", "error");
    go("#/login");
  }
});

// The name laserd announces on the LAN (mDNS), so people learn the address to bookmark.
async function showLanHost() {
  try {
    const health = await API.api("GET", "/health", undefined, { auth: false });
    const el = document.getElementById("lan-host");
    if (health?.host && el) {
      const port = location.port ? `:${location.port}` : "";
      el.textContent = `${health.host}${port}`;
      el.hidden = false;
    }
  } catch {
    /* not announced, or not answering: the header simply leaves it out */
  }
}

async function boot() {
  frame();
  showLanHost();
  // Both at once: the refresh cookie (if any) is tried while asking whether setup is needed,
  // which saves a round trip on every page load; the dashboard module loads meanwhile too.
  const wanted = parseHash().page;
  if (PAGES[wanted] && !PUBLIC.has(wanted)) PAGES[wanted]().catch(() => {});
  const [setup, session] = await Promise.allSettled([
    API.api("GET", "/setup", undefined, { auth: false }),
    API.refresh(),
  ]);
  if (setup.status === "rejected") {
    mount(main, h("div", { class: "panel error" }, h("h1", {}, "laserd is not answering"), h("p", {}, setup.reason.message)));
    return;
  }
  setupNeeded = Boolean(setup.value?.needed);
  const refreshed = session.status === "fulfilled" ? session.value : null;
  if (!setupNeeded && refreshed) {
    try {
      await signedIn(refreshed.user || null, { navigate: false });
    } catch {
      /* fall through to the login page */
    }
  }
  window.addEventListener("hashchange", route);
  route();
}

export function setupDone() {
  setupNeeded = false;
}

boot();
