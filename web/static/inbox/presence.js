// presence.js: the agent's own presence (spec rule 6, docs/dashboard.md
// "Presence"). An open socket makes the agent online; after the session's
// idle_after_seconds without activity (a mouse move, a key, a click, a
// scroll or the window's focus) in any of the agent's tabs, this tab
// sends {"type": "presence", "presence": "idle"}, and "online" again at
// the next activity. The tabs tell each other of their activity over a
// BroadcastChannel, so that one tab in use keeps the agent online while
// the others sit in the background.

const DEFAULT_IDLE_S = 300;
const SHARE_MS = 5000; // tell the other tabs at most this often (and 4 times per idle time)

export function mount(_el, ctx) {
  let last = Date.now(); // the latest activity in any tab
  let shared = 0; // when this tab last told the others
  let state = "online";
  let timer = 0;
  const channel = "BroadcastChannel" in window ? new BroadcastChannel(`microchat-presence-${ctx.me().id}`) : null;

  const idleMs = () => 1000 * (Number(ctx.session()?.idle_after_seconds) || DEFAULT_IDLE_S);

  function set(p) {
    if (p === state) return;
    state = p;
    ctx.send({ type: "presence", presence: p });
    ctx.bus.emit("presence:self", p);
  }

  function check() {
    clearTimeout(timer);
    const left = last + idleMs() - Date.now();
    if (left <= 0) set("idle");
    else timer = setTimeout(check, Math.min(left + 50, 60000));
  }

  function seen(at) {
    if (at <= last && state === "online") return;
    last = Math.max(last, at);
    set("online");
    check();
  }

  function active() {
    const now = Date.now();
    seen(now);
    if (channel && now - shared > Math.min(SHARE_MS, idleMs() / 4)) {
      shared = now;
      channel.postMessage({ active: now });
    }
  }

  for (const type of ["mousemove", "mousedown", "keydown", "wheel", "touchstart", "focus"]) window.addEventListener(type, active, { passive: true, capture: true });
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && active());
  if (channel) channel.onmessage = (e) => e.data && e.data.active && seen(Math.min(e.data.active, Date.now()));

  // A new socket starts online: tell it if the agent is idle.
  ctx.bus.on("hello", () => {
    if (state === "idle") ctx.send({ type: "presence", presence: "idle" });
  });
  check();

  return { state: () => state };
}
