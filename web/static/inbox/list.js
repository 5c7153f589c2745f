// list.js: the conversation list (docs/dashboard.md, "The list"): the
// columns Unassigned, Mine, All open and Closed with their counts, search,
// paging, and live updates from the socket's events without a reload.
//
// What it knows is one map of ConversationItems (GET /conversations), each
// as fresh as the last event applied to it: an event applies to an item
// only if its seq is after the item's (an item loaded over HTTP already
// holds the events up to its seq). A column shows the known items that
// belong to it (by status and participants), newest activity first, down
// to the oldest item of the pages loaded. Events of a conversation it does
// not know wait while it is loaded (GET /conversations/{id}), and all wait
// while the list reloads (after each hello: the list then equals the
// server's), to be applied after it.
import { h, clockTime } from "/static/shared/dom.js";
import { envelope } from "./emailview.js";

const COLUMNS = [
  ["unassigned", "Unassigned"],
  ["mine", "Mine"],
  ["open", "All open"],
  ["closed", "Closed"],
];
const PAGE = 50;

export function mount(el, ctx) {
  const items = new Map(); // id -> ConversationItem
  const rows = new Map(); // id -> {li, key}
  const matches = new Map(); // id -> search match {message_id, text}
  const fetching = new Map(); // id -> events waiting for its item
  let counts = { unassigned: 0, mine: 0, open: 0, closed: 0 };
  let column = "unassigned";
  // pages of the column shown, or of the search: next cursor and the
  // oldest item loaded ({at, id}; null: everything loaded).
  let pages = { cursor: null, oldest: null, loading: false, done: false };
  let query = "";
  let results = null; // the search's ids, in order, or null
  let reloading = null; // events that came during a reload
  let generation = 0; // of reloads and searches: later answers win
  let drawn = false;
  let selectedId = 0;

  const me = () => ctx.me().id;

  // The view.
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Columns" });
  const tabButtons = new Map();
  for (const [key, label] of COLUMNS) {
    const count = h("span", { class: "tab-count", "aria-hidden": "true" }, "0");
    const b = h(
      "button",
      { type: "button", role: "tab", class: "tab", "aria-label": label, "aria-selected": "false", onclick: () => show(key) },
      h("span", { class: "tab-label", text: label }),
      count,
    );
    tabButtons.set(key, { b, count });
    tabs.append(b);
  }
  const search = h("input", { type: "search", class: "search", "aria-label": "Search", placeholder: "Search conversations", autocomplete: "off" });
  const list = h("ul", { class: "conv-list", "aria-label": "Conversations" });
  const empty = h("p", { class: "empty", hidden: true });
  const more = h("div", { class: "more", "aria-hidden": "true" });
  const status = h("p", { class: "list-error", role: "alert" });
  const scroller = h("div", { class: "list-scroll" }, list, empty, more);
  el.replaceChildren(h("div", { class: "list-head" }, h("div", { class: "search-wrap" }, search), tabs), status, scroller);

  // Membership of a column, and the order of all: newest activity first.
  function inColumn(it, col) {
    const open = it.status === "open";
    const parts = it.participants || [];
    switch (col) {
      case "unassigned":
        return open && parts.length === 0;
      case "mine":
        return open && parts.some((p) => p.agent_id === me());
      case "open":
        return open;
      case "closed":
        return it.status === "closed";
    }
    return false;
  }
  const keyOf = (it) => ({ at: micros(it.last_activity_at), id: it.id });
  const newer = (a, b) => (a.at !== b.at ? a.at > b.at : a.id > b.id);
  const byActivity = (a, b) => (newer(keyOf(a), keyOf(b)) ? -1 : 1);

  // micros is a timestamp in microseconds, as the server orders them:
  // Date.parse keeps only milliseconds, and two messages may be stored
  // within one.
  function micros(iso) {
    const ms = Date.parse(iso);
    if (isNaN(ms)) return 0;
    const frac = /\.(\d+)/.exec(iso);
    return ms * 1000 + (frac ? Number((frac[1] + "000000").slice(3, 6)) : 0);
  }

  // visible is the ids shown now, in order.
  function visible() {
    if (results) return results.filter((id) => items.has(id));
    const out = [];
    for (const it of items.values()) {
      if (!inColumn(it, column)) continue;
      if (pages.oldest && newer(pages.oldest, keyOf(it))) continue;
      out.push(it);
    }
    return out.sort(byActivity).map((it) => it.id);
  }

  // Rendering, at most once a frame.
  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    setTimeout(draw, 0);
  }

  function draw() {
    pending = false;
    for (const [key, { b, count }] of tabButtons) {
      count.textContent = String(counts[key] ?? 0);
      b.setAttribute("aria-selected", String(!results && key === column));
      b.classList.toggle("active", !results && key === column);
    }
    const ids = visible();
    const keep = new Set(ids);
    for (const [id, r] of rows) {
      if (!keep.has(id)) {
        r.li.remove();
        rows.delete(id);
      }
    }
    // Rows whose content changed are made again; the focus stays on its
    // row.
    const focused = document.activeElement?.closest?.("li.conv");
    const lis = ids.map((id) => {
      const old = rows.get(id)?.li;
      const li = row(items.get(id));
      if (old && old !== li) {
        old.remove();
        if (old === focused) queueMicrotask(() => document.activeElement === document.body && li.querySelector(".conv-link").focus());
      }
      const cur = ctx.current() === id;
      li.classList.toggle("current", cur);
      li.classList.toggle("selected", selectedId === id);
      if (cur) li.firstChild.setAttribute("aria-current", "true");
      else li.firstChild.removeAttribute("aria-current");
      return li;
    });
    let at = list.firstChild;
    for (const li of lis) {
      if (li !== at) list.insertBefore(li, at);
      else at = at.nextSibling;
    }
    empty.hidden = ids.length > 0 || pages.loading;
    empty.textContent = results ? `No conversation matches \u201c${query}\u201d.` : column === "unassigned" ? "No conversation is waiting." : "No conversations here.";
    more.hidden = pages.done;
    drawn = true;
    // The end in view (a reload came during a scroll, or the page is
    // taller than a page of rows): the next page, as the observer would.
    if (!pages.loading && !pages.done && more.getBoundingClientRect().top < scroller.getBoundingClientRect().bottom + 200) load(false);
    ctx.bus.emit("list:drawn", ids);
  }

  function who(it) {
    const c = it.contact || {};
    return c.name || c.email || `Visitor ${it.contact_id || ""}`.trim();
  }

  function when(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return clockTime(iso);
    const opts = d.getFullYear() === now.getFullYear() ? { month: "short", day: "numeric" } : { year: "numeric", month: "short", day: "numeric" };
    return d.toLocaleDateString([], opts);
  }

  function preview(it) {
    const m = matches.get(it.id);
    if (results && m && m.text) return m.text;
    const lm = it.last_message;
    if (!lm) return it.subject || "";
    let text = lm.text || ((lm.attachments || []).length ? `\u{1F4CE} ${lm.attachments.map((a) => a.name).join(", ")}` : "");
    if (lm.channel === "note") text = `Note: ${text}`;
    else if (lm.author === "agent") text = `${lm.agent_id === me() ? "You" : agentName(lm.agent_id)}: ${text}`;
    return text.replace(/\s+/g, " ").trim();
  }

  function agentName(id) {
    const a = ctx.agents().get(id);
    return (a && a.name.split(" ")[0]) || "Agent";
  }

  function hue(s) {
    let n = 0;
    for (const ch of s) n = (n * 31 + ch.codePointAt(0)) % 360;
    return n;
  }

  function row(it) {
    const name = who(it);
    const parts = (it.participants || []).map((p) => p.name);
    const data = [name, it.has_email, it.unread, it.last_activity_at, preview(it), it.status, parts.join(","), column, !!results];
    const key = JSON.stringify(data);
    const r = rows.get(it.id);
    if (r && r.key === key) return r.li;
    const avatar = h("span", { class: "avatar", "aria-hidden": "true", text: (name.trim()[0] || "?").toUpperCase() });
    avatar.style.setProperty("--hue", String(hue(name)));
    const unassigned = inColumn(it, "unassigned");
    const canJoin = unassigned && it.status === "open";
    const li = h(
      "li",
      { class: "conv" + (it.unread > 0 ? " has-unread" : "") + (canJoin ? " can-join" : ""), "data-id": String(it.id) },
      h(
        "a",
        { class: "conv-link", href: `#/c/${it.id}` },
        avatar,
        h(
          "span",
          { class: "conv-body" },
          h(
            "span",
            { class: "conv-top" },
            h("span", { class: "conv-name", text: name }),
            it.has_email ? envelope() : null,
            h("time", { class: "conv-time", datetime: it.last_activity_at, text: when(it.last_activity_at) }),
          ),
          h(
            "span",
            { class: "conv-bottom" },
            h("span", { class: "conv-preview", text: preview(it) }),
            it.unread > 0 ? h("span", { class: "unread", "aria-label": `${it.unread} unread`, text: String(it.unread) }) : null,
          ),
          !unassigned && parts.length && column !== "mine" ? h("span", { class: "conv-agents", text: parts.join(", ") }) : null,
        ),
      ),
      canJoin ? h("button", { type: "button", class: "join", onclick: () => join(it.id) }, "JOIN") : null,
    );
    rows.set(it.id, { li, key });
    return li;
  }

  async function join(id) {
    const b = rows.get(id)?.li.querySelector(".join");
    if (b) b.disabled = true;
    status.textContent = "";
    try {
      await ctx.api("POST", `/conversations/${id}/join`);
      // The conversation is now the agent's: show it where it went.
      if (column === "unassigned" && !results) show("mine");
      ctx.open(id);
    } catch (e) {
      if (b) b.disabled = false;
      status.textContent = e.status === 409 ? "Someone joined it first." : e.message;
    }
  }

  // Counts follow each item's move between columns.
  function move(before, after) {
    for (const [col] of COLUMNS) {
      const d = (after && inColumn(after, col) ? 1 : 0) - (before && inColumn(before, col) ? 1 : 0);
      if (d) counts[col] = Math.max(0, (counts[col] || 0) + d);
    }
  }

  // put stores a fresher item (from HTTP): only if it is not older than
  // what is known.
  function put(it) {
    const old = items.get(it.id);
    if (old && old.seq > it.seq) return false;
    items.set(it.id, it);
    return true;
  }

  // Loading.

  function listPath(params) {
    const u = new URLSearchParams(params);
    return `/conversations?${u}`;
  }

  // load loads the next page of the column shown (or of the search).
  async function load(first) {
    if (!first && (pages.loading || pages.done)) return;
    const gen = first ? ++generation : generation;
    if (first) pages = { cursor: null, oldest: null, loading: true, done: false };
    pages.loading = true;
    const params = { limit: PAGE };
    if (results) params.q = query;
    else params.column = column;
    if (pages.cursor) params.cursor = pages.cursor;
    try {
      const r = await ctx.api("GET", listPath(params));
      if (gen !== generation) return;
      counts = { ...counts, ...r.counts };
      for (const it of r.items) {
        put(it);
        ctx.conn.hold(it.id, it.seq);
        if (it.match) matches.set(it.id, it.match);
      }
      if (results) results = [...(first ? [] : results), ...r.items.map((it) => it.id)];
      const last = r.items[r.items.length - 1];
      pages.cursor = r.next_cursor || null;
      pages.done = !r.next_cursor;
      pages.oldest = pages.done ? null : keyOf(last);
      status.textContent = "";
    } catch (e) {
      if (gen === generation && e.status !== 401) status.textContent = `Could not load the conversations: ${e.message}`;
    } finally {
      if (gen === generation) pages.loading = false;
      render();
    }
  }

  // reload loads the column again from the start and forgets what it
  // knew, so that the list is the server's; the events that come
  // meanwhile are applied after it.
  async function reload() {
    reloading = reloading || [];
    const gen = ++generation;
    pages = { cursor: null, oldest: null, loading: true, done: false };
    const params = { limit: PAGE };
    if (results) params.q = query;
    else params.column = column;
    try {
      const r = await ctx.api("GET", listPath(params));
      const cur = ctx.current();
      const curItem = cur && !r.items.some((it) => it.id === cur) ? await ctx.api("GET", `/conversations/${cur}`).catch(() => null) : null;
      if (gen !== generation) return; // another load took over
      items.clear();
      matches.clear();
      counts = { ...r.counts };
      for (const it of curItem ? [...r.items, curItem] : r.items) {
        items.set(it.id, it);
        ctx.conn.hold(it.id, it.seq);
        if (it.match) matches.set(it.id, it.match);
      }
      if (results) results = r.items.map((it) => it.id);
      pages.cursor = r.next_cursor || null;
      pages.done = !r.next_cursor;
      pages.oldest = pages.done ? null : keyOf(r.items[r.items.length - 1]);
      status.textContent = "";
    } catch (e) {
      if (gen === generation && e.status !== 401) status.textContent = `Could not load the conversations: ${e.message}`;
    } finally {
      if (gen === generation) pages.loading = false;
      // The events that waited apply now, to what is known.
      const waiting = reloading || [];
      reloading = null;
      for (const x of waiting) apply(x.ev, x.live);
      render();
      ctx.bus.emit("list:loaded");
    }
  }

  // show shows a column; wait: its items come from the next reload.
  function show(col, wait) {
    if (results) clearSearch();
    if (col === column && drawn) return;
    column = col;
    rows.clear();
    list.replaceChildren();
    if (wait) pages.loading = true;
    else load(true);
    render();
  }

  // fetchItem loads one conversation the list does not know (an event
  // for it came); its events wait meanwhile.
  async function fetchItem(id, ev, live) {
    if (fetching.has(id)) {
      fetching.get(id).push({ ev, live });
      return;
    }
    fetching.set(id, [{ ev, live }]);
    let it = null;
    try {
      it = await ctx.api("GET", `/conversations/${id}`);
    } catch {
      // Deleted, or the server is away: the next reload tells.
    }
    const waiting = fetching.get(id) || [];
    fetching.delete(id);
    if (it && !items.has(id)) {
      items.set(id, it);
      ctx.conn.hold(id, it.seq);
      // Where it stood before the events that brought it here is not
      // known: the counts are read again.
      scheduleCounts();
    }
    for (const x of waiting) apply(x.ev, x.live);
    render();
  }

  // Counts of items the list learnt of late are read again from the
  // server, at most once a second.
  let countsTimer = 0;
  function scheduleCounts() {
    if (countsTimer) return;
    countsTimer = setTimeout(async () => {
      countsTimer = 0;
      try {
        const r = await ctx.api("GET", listPath({ column, limit: 1 }));
        counts = { ...counts, ...r.counts };
        render();
      } catch {
        // The next reload reads them.
      }
    }, 1000);
  }

  // Events.

  function apply(ev, live) {
    if (reloading) {
      reloading.push({ ev, live });
      return;
    }
    const id = ev.conversation_id;
    if (fetching.has(id)) {
      fetching.get(id).push({ ev, live });
      return;
    }
    const old = items.get(id);
    const d = ev.data || {};
    if (ev.type === "conversation_deleted") {
      if (old) {
        items.delete(id);
        move(old, null);
      } else scheduleCounts();
      if (results) results = results.filter((x) => x !== id);
      render();
      return;
    }
    if (!old) {
      if (ev.type === "conversation_created") {
        const it = { ...d.conversation, contact: d.contact, participants: [], unread: 0, seq: ev.seq };
        items.set(id, it);
        move(null, it);
        render();
      } else fetchItem(id, ev, live);
      return;
    }
    if (ev.seq && ev.seq <= old.seq) return; // the item has it already
    const it = { ...old, participants: [...(old.participants || [])], seq: ev.seq || old.seq };
    switch (ev.type) {
      case "message_added": {
        const m = d.message;
        it.last_message = m;
        if (m.channel !== "note") it.last_activity_at = m.created_at || ev.at;
        if (m.channel === "email") it.has_email = true;
        if (m.author === "contact") it.unread = (it.unread || 0) + 1;
        if (d.reopened) reopen(it);
        break;
      }
      case "joined":
        if (d.reopened) reopen(it);
        if (!it.participants.some((p) => p.agent_id === d.agent_id)) {
          const a = ctx.agents().get(d.agent_id);
          it.participants.push({ agent_id: d.agent_id, name: d.agent_name, responsible: d.responsible, joined_at: ev.at, presence: (a && a.presence) || "online" });
        }
        break;
      case "left":
        it.participants = it.participants.filter((p) => p.agent_id !== d.agent_id);
        break;
      case "closed":
        it.status = "closed";
        it.closed_at = ev.at;
        it.participants = [];
        break;
      case "messages_read":
        if (d.reader === "agent" && d.agent_id === me()) it.unread = 0;
        break;
      case "message_state":
        if (it.last_message && (d.message_ids || []).includes(it.last_message.id)) it.last_message = { ...it.last_message, state: d.state };
        break;
    }
    items.set(id, it);
    move(old, it);
    render();
  }

  function reopen(it) {
    it.status = "open";
    it.closed_at = null;
    it.participants = [];
  }

  ctx.bus.on("event", ({ ev, live }) => apply(ev, live));
  ctx.bus.on("hello", () => reload());
  ctx.bus.on("resync", async (id) => {
    if (!id) return reload();
    try {
      const it = await ctx.api("GET", `/conversations/${id}`);
      const old = items.get(id);
      items.set(id, it);
      move(old, it);
      ctx.conn.hold(id, it.seq);
    } catch (e) {
      if (e.status === 404) {
        const old = items.get(id);
        items.delete(id);
        move(old, null);
        ctx.conn.forget(id);
      }
    }
    render();
  });
  ctx.bus.on("open", (id) => {
    if (id) selectedId = id;
    render();
  });
  ctx.bus.on("main:agents", () => render());

  // Search: results of all statuses, as the server orders them.
  let searchTimer = 0;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 250);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      clearSearch();
      search.blur();
    } else if (e.key === "ArrowDown" || e.key === "Enter") {
      e.preventDefault();
      clearTimeout(searchTimer);
      if (e.key === "Enter") runSearch().then(() => moveBy(1, true));
      else moveBy(1, true);
    }
  });

  async function runSearch() {
    const q = search.value.trim();
    if (q === query && results) return;
    if (!q) return clearSearch();
    query = q;
    results = [];
    rows.clear();
    list.replaceChildren();
    await load(true);
  }

  function clearSearch() {
    search.value = "";
    if (!results) return;
    query = "";
    results = null;
    rows.clear();
    list.replaceChildren();
    load(true);
  }

  // Paging: the next page when the end of the list comes into view.
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !pages.loading && !pages.done && drawn) load(false);
  }, { root: scroller, rootMargin: "200px" }).observe(more);

  // Keyboard: moving through the rows (shortcuts.js sends list:move).
  function moveBy(n, fromSearch) {
    const ids = visible();
    if (!ids.length) return;
    const focused = document.activeElement?.closest?.("li.conv");
    const from = focused ? Number(focused.dataset.id) : selectedId || ctx.current();
    let i = ids.indexOf(from);
    i = fromSearch || i < 0 ? (n > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, i + n));
    selectedId = ids[i];
    draw();
    const li = rows.get(selectedId)?.li;
    li?.querySelector(".conv-link").focus();
    li?.scrollIntoView({ block: "nearest" });
  }
  list.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      moveBy(e.key === "ArrowDown" ? 1 : -1);
    }
  });
  ctx.bus.on("list:move", (n) => moveBy(n));
  ctx.bus.on("list:open", () => {
    const id = selectedId || visible()[0];
    if (id) ctx.open(id);
  });
  ctx.bus.on("list:search", () => search.focus());
  ctx.bus.on("list:column", (col) => show(col));

  // The first page: the socket's first hello reloads the list (as each
  // hello does, for what happened while away), so loading before it too
  // would run the same query twice at once and throw the first answer
  // away. Without a hello soon (no socket), it loads over HTTP anyway.
  if (ctx.status() === "open") show(column);
  else {
    show(column, true);
    setTimeout(() => generation === 0 && load(true), 2000);
  }

  return {
    conversation: (id) => items.get(id),
    upsert(it) {
      const old = items.get(it.id);
      if (put(it)) move(old, it);
      render();
    },
    // state is what the list shows, for tests: {column, ids, counts}.
    state: () => ({ column: results ? "search" : column, ids: visible(), counts: { ...counts } }),
  };
}
