// main.js: the dashboard's boot (docs/dashboard.md). It logs the agent
// in, builds ctx (the contract every view gets: /work DASH.md, and
// docs/dashboard.md "Modules"), mounts the views by dynamic import (a
// view module that is missing is logged and left out), routes by the
// hash (#/c/ID, #/reports, #/admin, #/profile) and handles the end of a
// session: a 401 from the API or 4401 on the socket shows the login form
// over the page with a message, the drafts stay in localStorage, and after
// logging in again the agent is where they were.
import { api as rawApi, setCSRFToken, APIError } from "/static/api.js";
import { createBus } from "./bus.js";
import { createConn } from "./conn.js";

const $ = (id) => document.getElementById(id);

const bus = createBus();
const conn = createConn(bus);
let session = null; // the session answer
let agent = null; // the logged-in Agent
let ended = false; // the session ended; the login form is up
let mounted = false;
let current = 0;
let list = null; // what list.js's mount returned: {conversation, upsert}
const agents = new Map(); // id -> Agent

// api is the API for the views: a 401 anywhere ends the session (the
// login form comes up); PATCH /agents/me updates ctx.me().
async function api(method, path, body) {
  try {
    const r = await rawApi(method, path, body);
    if (method === "PATCH" && path === "/agents/me" && r && r.id === agent.id) setMe(r);
    return r;
  } catch (e) {
    if (e instanceof APIError && e.status === 401) bus.emit("session-ended");
    throw e;
  }
}

// Drafts are kept per agent in localStorage, so that a session that
// ended, a reload or a crash loses none.
const drafts = {
  key: () => `microchat:drafts:${agent ? agent.id : 0}`,
  all() {
    try {
      return JSON.parse(localStorage.getItem(this.key()) || "{}") || {};
    } catch {
      return {};
    }
  },
  get(id) {
    return this.all()[id] || "";
  },
  set(id, text) {
    const all = this.all();
    if (text) all[id] = text;
    else delete all[id];
    try {
      localStorage.setItem(this.key(), JSON.stringify(all));
    } catch {
      // Storage full or disabled: the draft lives in the page only.
    }
  },
};

const ctx = {
  api,
  bus,
  me: () => agent,
  session: () => session,
  send: (frame) => conn.send(frame),
  status: () => conn.status(),
  open(id) {
    id = Number(id) || 0;
    const hash = id ? `#/c/${id}` : "#/";
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  current: () => current,
  conversation: (id) => (list ? list.conversation(Number(id)) : undefined),
  upsert(item) {
    conn.hold(item.id, item.seq);
    if (list) list.upsert(item);
  },
  agents: () => agents,
  isAdmin: () => !!agent && agent.role === "admin",
  drafts: {
    get: (id) => drafts.get(id),
    set: (id, text) => drafts.set(id, text),
  },
  // conn gives list.js what it needs of the socket: hold(id, seq) and
  // forget(id) (see conn.js), catchingUp().
  conn,
};

// Views: file, mount point (null: the document body), admins only.
const VIEWS = [
  ["list.js", "list"],
  ["thread.js", "thread"],
  ["visitor.js", "visitor"],
  ["reports.js", "view-reports"],
  ["admin.js", "view-admin", true],
  ["profile.js", "view-profile"],
  ["notify.js", null],
  ["presence.js", null],
  ["shortcuts.js", null],
];

// mountViews imports every view and mounts it: mount(el, ctx), or the
// module's one other mount... function. A module missing (its branch not
// merged yet) or failing is logged, and the others go on.
function mountViews() {
  mounted = true;
  return Promise.all(
    VIEWS.filter(([, , admin]) => !admin || ctx.isAdmin()).map(([file, id]) =>
      import(`./${file}`)
        .then((m) => {
          const fn = m.mount || Object.entries(m).find(([k, v]) => k.startsWith("mount") && typeof v === "function")?.[1];
          if (!fn) throw new Error("no mount function");
          const r = fn(id ? $(id) : document.body, ctx);
          if (file === "list.js") list = r;
        })
        .catch((e) => console.warn(`microchat: view ${file} not mounted:`, e)),
    ),
  );
}

// Routing by the hash.

const ROUTES = ["conversations", "reports", "admin", "profile"];

function route() {
  if (!agent || ended) return;
  const hash = location.hash;
  const m = /^#\/c\/(\d+)$/.exec(hash);
  let name = "conversations"; // #/c/ID, #/ and anything unknown
  if (hash === "#/reports") name = "reports";
  else if (hash === "#/profile") name = "profile";
  else if (hash === "#/admin") {
    if (ctx.isAdmin()) name = "admin";
    else return location.replace("#/");
  }
  for (const r of ROUTES) {
    $(`view-${r}`).hidden = r !== name;
    const link = document.querySelector(`.nav a[data-route="${r}"]`);
    if (link) link.toggleAttribute("aria-current", r === name);
  }
  bus.emit("route", name);
  if (name === "conversations") {
    const id = m ? Number(m[1]) : 0;
    current = id;
    bus.emit("open", id);
  }
}
window.addEventListener("hashchange", route);

// The me-menu: presence dot, name, profile, log out.

function setMe(a) {
  agent = { ...agent, ...a };
  if (agents.has(agent.id)) agents.set(agent.id, { ...agents.get(agent.id), ...agent });
  renderMe();
  bus.emit("main:me", agent);
}

// selfPresence is what presence.js says of this agent ("online" or
// "idle"): the socket makes the agent online, presence.js idle.
let selfPresence = "online";
bus.on("presence:self", (p) => {
  selfPresence = p;
  renderMe();
});

function renderMe() {
  if (!agent) return;
  $("me-name").textContent = agent.name;
  const p = conn.status() === "open" ? selfPresence : "offline";
  $("me-dot").className = `dot ${p}`;
  $("me-dot").title = p;
  $("me-button").setAttribute("aria-label", `${agent.name}, ${p}`);
  $("nav-admin").hidden = !ctx.isAdmin();
}

function openMenu(open) {
  $("me-items").hidden = !open;
  $("me-button").setAttribute("aria-expanded", String(open));
  if (open) $("me-items").querySelector("a,button")?.focus();
}

$("me-button").addEventListener("click", () => openMenu($("me-items").hidden));
document.addEventListener("click", (e) => {
  if (!$("me-menu").contains(e.target)) openMenu(false);
});
$("me-menu").addEventListener("keydown", (e) => {
  if (e.key === "Escape") {
    openMenu(false);
    $("me-button").focus();
  }
});
$("me-items").addEventListener("click", (e) => {
  if (e.target.closest("a,button")) openMenu(false);
});
$("logout").addEventListener("click", async () => {
  try {
    await rawApi("POST", "/auth/logout");
  } catch {
    // Logged out already, or the server is away: the page forgets anyway.
  }
  conn.stop();
  setCSRFToken("");
  showLogin("You are logged out.", "ok");
});

async function loadAgents() {
  try {
    const r = await api("GET", "/agents");
    agents.clear();
    for (const a of r.agents || []) agents.set(a.id, a);
    renderMe();
    bus.emit("main:agents", agents);
  } catch (e) {
    console.warn("microchat: agents:", e);
  }
}

bus.on("agent_presence", (p) => {
  const a = agents.get(p.agent_id);
  if (a) agents.set(p.agent_id, { ...a, presence: p.presence, ...(p.name ? { name: p.name } : {}) });
  else loadAgents();
  if (agent && p.agent_id === agent.id) renderMe();
});
bus.on("status", (st) => {
  $("conn-status").textContent = st === "reconnecting" ? "Reconnecting\u2026" : "";
  renderMe();
  // A session that ended while the socket was away refuses the upgrade
  // with a 401, which a browser reports as a plain drop: ask the API,
  // whose 401 ends the session here.
  if (st === "reconnecting" && !ended) checkSession();
});

let checking = false;
async function checkSession() {
  if (checking) return;
  checking = true;
  try {
    const s = await api("GET", "/auth/session");
    session = { ...session, ...s };
  } catch {
    // 401: session-ended is emitted; otherwise the server is away.
  } finally {
    checking = false;
  }
}
bus.on("hello", (f) => {
  if (f.agent && agent && f.agent.id === agent.id) setMe(f.agent);
  loadAgents();
});

// Login, and the end of a session.

function showLogin(message, kind) {
  ended = true;
  $("app").inert = true;
  $("login").hidden = false;
  const msg = $("login-message");
  msg.textContent = message || "";
  msg.className = kind === "ok" ? "message ok" : "message";
  msg.hidden = !message;
  $("login-error").textContent = "";
  if (agent) $("email").value = agent.email;
  ($("email").value ? $("password") : $("email")).focus();
}

bus.on("session-ended", () => {
  if (ended) return;
  conn.stop();
  showLogin("Your session has ended. Please log in again: your drafts are kept.");
});

async function start(s) {
  if (agent && s.agent.id !== agent.id) {
    // Another agent on this page: start clean, with their drafts.
    location.reload();
    return;
  }
  session = s;
  agent = s.agent;
  setCSRFToken(s.csrf_token);
  ended = false;
  $("login").hidden = true;
  $("app").inert = false;
  $("app").hidden = false;
  renderMe();
  await loadAgents();
  if (!mounted) await mountViews();
  conn.start();
  route();
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  const button = e.submitter || $("login-form").querySelector("button");
  button.disabled = true;
  try {
    const s = await rawApi("POST", "/auth/login", { email: $("email").value, password: $("password").value });
    $("password").value = "";
    await start(s);
  } catch (err) {
    $("login-error").textContent = err.status === 401 ? "Wrong email or password." : err.message;
  } finally {
    button.disabled = false;
  }
});

// For the browser tests and debugging in the console.
window.microchat = {
  ctx,
  get list() {
    return list;
  },
};

try {
  await start(await rawApi("GET", "/auth/session"));
} catch (e) {
  $("app").hidden = true;
  showLogin(e.status === 401 ? "" : e.message);
}
