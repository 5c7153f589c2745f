// inbox.js: the dashboard placeholder. Log in, then list the Unassigned
// column. All user text is set with textContent.
import { api, setCSRFToken, APIError } from "./api.js";

const $ = (id) => document.getElementById(id);

function showLogin() {
  $("inbox").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("email").focus();
}

async function showInbox(session) {
  setCSRFToken(session.csrf_token);
  $("login").hidden = true;
  $("who").textContent = `${session.agent.name} (${session.agent.email})`;
  $("logout").hidden = false;
  $("inbox").hidden = false;
  await loadUnassigned();
}

function conversationRow(item) {
  const li = document.createElement("li");
  li.className = "conversation";

  const who = item.contact.name || item.contact.email || "Visitor";
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  avatar.textContent = who.trim().charAt(0).toUpperCase() || "?";

  const summary = document.createElement("div");
  summary.className = "summary";
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = item.has_email ? `✉ ${who}` : who;
  const preview = document.createElement("div");
  preview.className = "preview";
  preview.textContent = item.last_message ? item.last_message.text : item.subject || "";
  summary.append(name, preview);

  li.append(avatar, summary);
  if (item.unread > 0) {
    const unread = document.createElement("span");
    unread.className = "unread";
    unread.textContent = String(item.unread);
    unread.setAttribute("aria-label", `${item.unread} unread`);
    li.append(unread);
  }

  const join = document.createElement("button");
  join.type = "button";
  join.textContent = "JOIN";
  join.addEventListener("click", async () => {
    join.disabled = true;
    try {
      await api("POST", `/conversations/${item.id}/join`);
      await loadUnassigned();
    } catch (err) {
      join.disabled = false;
      $("inbox-error").textContent = err.message;
    }
  });
  li.append(join);
  return li;
}

async function loadUnassigned() {
  $("inbox-error").textContent = "";
  try {
    const page = await api("GET", "/conversations?column=unassigned");
    $("unassigned-count").textContent = String(page.counts.unassigned ?? page.items.length);
    $("unassigned-list").replaceChildren(...page.items.map(conversationRow));
    $("unassigned-empty").hidden = page.items.length > 0;
  } catch (err) {
    if (err instanceof APIError && err.status === 401) {
      showLogin();
      return;
    }
    $("inbox-error").textContent = err.message;
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    const session = await api("POST", "/auth/login", {
      email: $("email").value,
      password: $("password").value,
    });
    $("password").value = "";
    await showInbox(session);
  } catch (err) {
    $("login-error").textContent = err.message;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/auth/logout");
  } finally {
    setCSRFToken("");
    showLogin();
  }
});

try {
  await showInbox(await api("GET", "/auth/session"));
} catch {
  showLogin();
}
