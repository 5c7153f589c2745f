// notify.js: browser notifications and a sound (docs/dashboard.md,
// "Notifications"), by the agent's settings (ctx.me().settings:
// notifications "all" | "mine" | "off", sound true | false):
//
//   - "all": a new conversation, a contact's message in an Unassigned
//     conversation, and a contact's message in a conversation the agent
//     joined; "mine": only the last; "off": none.
//   - Live events only: not the catch-up after a reconnect (live false),
//     never the agent's own actions.
//   - One per event across the agent's tabs: the tab holding the Web Lock
//     "microchat-notify-<agent id>" shows them (without Web Locks, the
//     first tab to claim the event on BroadcastChannel("microchat-notify")),
//     and each has the tag "mc-ev-<conversation id>-<seq>", which the browser shows
//     once. A conversation's first message replaces its "New conversation"
//     notification rather than adding one.
//   - Clicking one focuses the window and opens the conversation.
//
// Permission is asked from a user gesture: "Enable notifications" in the
// me-menu, or the banner shown while the browser has not been asked.
import { h } from "/static/shared/dom.js";

const MERGE_MS = 5000; // a first message this soon after its conversation replaces its notification
const DISMISSED = "microchat:notify-banner-dismissed";

// tagOf names an event for the browser's notification tag and the tabs'
// claims: its conversation and seq, which identify it everywhere (an
// event's id is 0 on the live stream of new messages, which the store
// publishes before it reads ids back).
function tagOf(ev) {
  return `mc-ev-${ev.conversation_id}-${ev.seq}`;
}

export function mount(_el, ctx) {
  const supported = "Notification" in window;
  let leader = false;
  const created = new Map(); // conversation id -> {tag, at}: "New conversation" shown
  const claims = new Set();
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("microchat-notify") : null;

  // Leader election: the tab holding the lock until it closes.
  if (navigator.locks) {
    navigator.locks.request(`microchat-notify-${ctx.me().id}`, () => {
      leader = true;
      return new Promise(() => {});
    });
  } else if (channel) {
    channel.onmessage = (e) => e.data && e.data.claim && claims.add(e.data.claim);
  } else leader = true;

  // whoShows decides whether this tab shows the event's notification.
  async function whoShows(evID) {
    if (navigator.locks || !channel) return leader;
    // Without locks: wait a random moment; the first claim wins.
    await new Promise((r) => setTimeout(r, Math.random() * 150));
    if (claims.has(evID)) return false;
    claims.add(evID);
    channel.postMessage({ claim: evID });
    return true;
  }

  const settings = () => ({ notifications: "all", sound: true, ...(ctx.me().settings || {}) });

  // The me-menu item and the banner.
  const menuItem = h("button", { type: "button", role: "menuitem", class: "notify-enable", onclick: ask }, "Enable notifications");
  const extra = document.getElementById("me-extra");
  if (extra) extra.append(menuItem);
  const banner = document.getElementById("banner");
  const bannerBody = h(
    "span",
    { class: "notify-banner" },
    h("span", { text: "Get a notification when a visitor starts a conversation or writes to you." }),
    h("button", { type: "button", onclick: ask }, "Enable notifications"),
    h("button", { type: "button", class: "ghost", onclick: dismiss }, "Not now"),
  );

  function refresh() {
    const p = supported ? Notification.permission : "denied";
    menuItem.hidden = !supported || p === "granted";
    menuItem.textContent = p === "denied" ? "Notifications are blocked" : "Enable notifications";
    menuItem.disabled = p === "denied";
    const showBanner = supported && p === "default" && settings().notifications !== "off" && !localStorage.getItem(DISMISSED);
    if (banner) {
      if (showBanner && !banner.contains(bannerBody)) banner.replaceChildren(bannerBody);
      if (showBanner) banner.hidden = false;
      else if (banner.contains(bannerBody)) banner.hidden = true;
    }
  }

  async function ask() {
    unlockSound();
    if (!supported) return;
    try {
      await Notification.requestPermission();
    } catch {
      // Old browsers take a callback; the permission is read below.
    }
    refresh();
  }

  function dismiss() {
    localStorage.setItem(DISMISSED, "1");
    refresh();
  }

  // The sound: a short two-tone chime made with WebAudio (no file). A
  // browser lets a page play sound after a user gesture: the context is
  // made, or resumed, at the first click or key.
  let audio = null;
  function unlockSound() {
    try {
      audio = audio || new AudioContext();
      if (audio.state === "suspended") audio.resume();
    } catch {
      audio = null;
    }
  }
  window.addEventListener("pointerdown", unlockSound, { once: true, capture: true });
  window.addEventListener("keydown", unlockSound, { once: true, capture: true });

  function chime() {
    if (!audio || audio.state !== "running") return;
    const t = audio.currentTime;
    for (const [i, f] of [880, 1320].entries()) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.type = "sine";
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, t + i * 0.12);
      g.gain.exponentialRampToValueAtTime(0.18, t + i * 0.12 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.12 + 0.35);
      o.connect(g).connect(audio.destination);
      o.start(t + i * 0.12);
      o.stop(t + i * 0.12 + 0.4);
    }
  }

  function name(item, fallback) {
    const c = (item && item.contact) || fallback || {};
    return c.name || c.email || "A visitor";
  }

  // what returns the notification an event calls for, or null.
  function what(ev) {
    const mode = settings().notifications;
    if (mode === "off") return null;
    const d = ev.data || {};
    const item = ctx.conversation(ev.conversation_id);
    if (ev.type === "conversation_created") {
      if (mode !== "all") return null;
      const conv = d.conversation || {};
      created.set(ev.conversation_id, { tag: tagOf(ev), at: Date.now() });
      return { title: "New conversation", body: [name(item, d.contact), conv.subject].filter(Boolean).join(" \u2014 "), tag: tagOf(ev) };
    }
    if (ev.type !== "message_added") return null;
    const m = d.message || {};
    if (m.author !== "contact" || m.channel === "note") return null;
    const parts = (item && item.participants) || [];
    const mine = parts.some((p) => p.agent_id === ctx.me().id);
    const unassigned = d.reopened || (item && item.status === "open" && parts.length === 0);
    if (!(mine || (unassigned && mode === "all"))) return null;
    const text = m.text || ((m.attachments || []).length ? "Sent a file" : "New message");
    const first = created.get(ev.conversation_id);
    const tag = first && Date.now() - first.at < MERGE_MS ? first.tag : tagOf(ev);
    created.delete(ev.conversation_id);
    return { title: unassigned && !mine ? `${name(item)} (Unassigned)` : name(item), body: text, tag };
  }

  ctx.bus.on("event", async ({ ev, live }) => {
    if (!live) return;
    const n = what(ev);
    if (!n) return;
    // The agent is looking at this conversation: nothing to tell.
    if (document.visibilityState === "visible" && document.hasFocus() && ctx.current() === ev.conversation_id) return;
    if (!(await whoShows(tagOf(ev)))) return;
    if (settings().sound) chime();
    if (!supported || Notification.permission !== "granted") return;
    try {
      const note = new Notification(n.title, { body: n.body.slice(0, 200), tag: n.tag, renotify: false });
      note.onclick = () => {
        window.focus();
        ctx.open(ev.conversation_id);
        note.close();
      };
    } catch (e) {
      console.warn("microchat: notification:", e);
    }
  });
  ctx.bus.on("main:me", refresh);
  // The profile's "Test sound" button: its click is the user gesture.
  ctx.bus.on("notify:test-sound", (req) => {
    unlockSound();
    if (audio) audio.resume().then(chime, () => {});
    req.played = !!audio;
  });
  refresh();
  if (navigator.permissions) {
    navigator.permissions
      .query({ name: "notifications" })
      .then((s) => (s.onchange = refresh))
      .catch(() => {});
  }

  return { leader: () => leader };
}
