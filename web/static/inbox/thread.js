// thread.js: the conversation view (issue 13, item 4): the contact and
// the participants at the top with "Leave Conversation" (or JOIN) and,
// for admins, "Delete conversation"; the messages, chat and email told
// apart (emailview.js); the composer (composer.js) at the bottom.
//
// Paging: opening a conversation fetches its item and its newest page of
// messages (GET .../messages?limit=50) at once and renders only those, so
// a conversation of 10,000 messages opens as fast as one of ten; older
// pages (?before=SEQ) come as the agent scrolls up, and the scroll
// position stays where it was.
//
// Live: every event of the conversation shown (bus "event", in seq
// order) updates it: messages, their delivery and read states, joins,
// leaves, closing and ratings (as system lines), the contact's typing
// (dropped 10 s after its last renewal) and presence. Events that come
// while the conversation loads are applied after it, in order, so that
// none is lost; "resync" reloads it. What the agent opened of a message
// (an email's Details, its quoted text, its remote images) is kept by
// message id and opened again when the conversation is drawn again (a
// resync, "Try again"), until another conversation is shown.
//
// Reading: the conversation is marked read (POST .../read with the last
// sequence number) when it shows something unread while the page is
// visible and focused.
//
// Everything from users is set as text (h(), linkify()); email HTML only
// ever goes into its sandboxed frame (emailview.js).

import { h, icon, ICONS, linkify, formatSize, clockTime } from "/static/shared/dom.js";
import { createComposer } from "./composer.js";
import { createReplies } from "./replies.js";
import { createEmailView, envelope } from "./emailview.js";

const TRASH = "M3 6h18M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6M10 11v6M14 11v6M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2";

const PAGE = 50;
const TYPING_TTL_MS = 10000;
// Load the previous page when the agent scrolls within this many pixels
// of the top.
const OLDER_MARGIN = 400;

const STATE_TEXT = { queued: "Queued", sent: "Sent", delivered: "Delivered", read: "Read", failed: "Failed" };

const INLINE_IMAGE = /^image\/(png|jpeg|gif|webp)$/;

// LOCK is Feather's "lock" icon (MIT), for private notes.
const LOCK = "M5 11h14a2 2 0 0 1 2 2v7a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2zM7 11V7a5 5 0 0 1 10 0v4";

function initial(name) {
	return (name || "?").trim().charAt(0).toUpperCase() || "?";
}

function contactName(item) {
	const c = (item && item.contact) || {};
	return c.name || c.email || "Visitor";
}

// when is a message's time: the hour for today, else the date too.
function when(iso) {
	const d = new Date(iso);
	if (isNaN(d)) return "";
	const today = new Date();
	if (d.toDateString() === today.toDateString()) return clockTime(iso);
	const opts = { day: "numeric", month: "short" };
	if (d.getFullYear() !== today.getFullYear()) opts.year = "numeric";
	return d.toLocaleDateString([], opts) + " " + clockTime(iso);
}

export function mount(el, ctx) {
	const replies = createReplies(ctx);
	let view = null; // the conversation shown; see show()
	let gen = 0; // bumped at each show(): answers for an older one are dropped
	let stick = true; // the list is scrolled to its end
	let typingTimer = 0;

	// --- skeleton -----------------------------------------------------

	const empty = h("div", { class: "thread-empty" }, h("p", { text: "Choose a conversation from the list." }));
	const header = h("header", { class: "thread-header" });
	const notice = h("p", { class: "thread-error", role: "alert" });
	const older = h("div", { class: "older" });
	const items = h("div", { class: "message-items" });
	const pendingBox = h("div", { class: "pending-items" });
	const list = h("div", { class: "messages", role: "log", "aria-label": "Messages", tabindex: "0" }, older, items, pendingBox);
	const jump = h("button", { type: "button", class: "jump", hidden: true, text: "New messages ↓" });
	const typingEl = h("div", { class: "typing", "aria-live": "polite", hidden: true });
	const composer = createComposer(ctx, replies, {
		onSent: () => scrollToEnd(),
		onEscape: () => list.focus(),
	});
	const overlay = h("div", { class: "drop-overlay", "aria-hidden": "true" }, h("span", { text: "Drop files to attach them" }));
	const dialog = h("dialog", { class: "confirm", "aria-labelledby": "delete-title" });
	const body = h("div", { class: "thread-body" }, list, jump, typingEl);
	el.classList.add("thread-view");
	el.replaceChildren(empty, header, notice, body, composer.el, overlay, dialog);

	// --- header -------------------------------------------------------

	function me() {
		return (ctx.me && ctx.me()) || {};
	}

	function isParticipant(item) {
		return !!(item && (item.participants || []).some((p) => p.agent_id === me().id));
	}

	function presenceOf(p) {
		const a = ctx.agents && ctx.agents().get(p.agent_id);
		return (a && a.presence) || p.presence || "offline";
	}

	function drawHeader() {
		if (!view) return header.replaceChildren();
		const item = view.item;
		const name = contactName(item);
		const contact = (item && item.contact) || {};
		const online = !!contact.online;
		const actions = [];
		let leave = null;
		if (item && isParticipant(item)) {
			leave = h("button", { type: "button", class: "secondary leave", text: "Leave Conversation" });
			leave.addEventListener("click", () => participate("leave", leave));
		} else if (item) {
			const join = h("button", { type: "button", class: "join", text: "JOIN" });
			join.addEventListener("click", () => participate("join", join));
			actions.push(join);
		}
		if (item && ctx.isAdmin && ctx.isAdmin()) {
			// An icon, not a wide red button: a rare action, kept out of
			// the way of Leave Conversation (the header stays one line at
			// 1280 px); its name is the label.
			const del = h("button", { type: "button", class: "delete", "aria-label": "Delete conversation", title: "Delete conversation" }, icon(TRASH));
			del.addEventListener("click", confirmDelete);
			actions.push(del);
		}
		const participants = (item && item.participants) || [];
		header.replaceChildren(
			h("span", { class: "avatar", "aria-hidden": "true", text: initial(name) }),
			h(
				"div",
				{ class: "who" },
				h(
					"div",
					{ class: "who-line" },
					h("h2", { class: "contact-name", text: item ? name : "Loading…" }),
					item
						? h("span", { class: "presence " + (online ? "online" : "offline") }, h("span", { class: "dot", "aria-hidden": "true" }), online ? "online" : "offline")
						: null,
					leave,
				),
				h(
					"div",
					{ class: "sub" },
					item && item.has_email ? envelope() : null,
					contact.email ? h("span", { class: "contact-email", text: contact.email }) : null,
					item && item.subject ? h("span", { class: "subject", text: item.subject }) : null,
					item && item.status === "closed" ? h("span", { class: "tag", text: "Closed" }) : null,
					item && !participants.length && item.status === "open" ? h("span", { class: "tag", text: "Unassigned" }) : null,
				),
			),
			h(
				"ul",
				{ class: "participants", "aria-label": "Participants" },
				participants.map((p) => {
					const pr = presenceOf(p);
					return h(
						"li",
						{ class: "participant " + pr, "data-agent-id": String(p.agent_id), title: `${p.name}: ${pr}${p.responsible ? " (responsible)" : ""}` },
						h("span", { class: "dot", "aria-hidden": "true" }),
						h("span", { class: "name", text: p.name }),
						h("span", { class: "visually-hidden", text: ` (${pr})` }),
					);
				}),
			),
			h("div", { class: "thread-actions" }, actions),
		);
	}

	async function participate(what, button) {
		const v = view;
		button.disabled = true;
		notice.textContent = "";
		try {
			const item = await ctx.api("POST", `/conversations/${v.id}/${what}`);
			if (view !== v) return;
			v.item = item;
			ctx.upsert(item);
			drawHeader();
			composer.update(item);
		} catch (err) {
			button.disabled = false;
			if (view === v) notice.textContent = (what === "join" ? "Could not join: " : "Could not leave: ") + err.message;
		}
	}

	function confirmDelete() {
		const v = view;
		if (!v) return;
		const cancel = h("button", { type: "button", class: "secondary", text: "Cancel", value: "cancel" });
		const ok = h("button", { type: "button", class: "danger", text: "Delete" });
		const error = h("p", { class: "error", role: "alert" });
		cancel.addEventListener("click", () => dialog.close());
		ok.addEventListener("click", async () => {
			ok.disabled = true;
			error.textContent = "";
			try {
				await ctx.api("DELETE", `/conversations/${v.id}`);
				dialog.close();
				if (view === v) deleted();
			} catch (err) {
				ok.disabled = false;
				error.textContent = err.message;
			}
		});
		dialog.replaceChildren(
			h("h3", { id: "delete-title", text: "Delete this conversation?" }),
			h("p", { text: `The conversation with ${contactName(v.item)}, its messages and its attachments are erased for good. This cannot be undone.` }),
			error,
			h("div", { class: "dialog-buttons" }, cancel, ok),
		);
		dialog.showModal();
		cancel.focus();
	}

	function deleted() {
		const id = view && view.id;
		show(0);
		empty.replaceChildren(h("p", { text: "This conversation was deleted." }));
		if (id && ctx.current() === id) ctx.open(0);
	}

	// --- messages -----------------------------------------------------

	function agentName(id) {
		const a = ctx.agents && ctx.agents().get(id);
		if (a) return a.name;
		const p = view && view.item && (view.item.participants || []).find((x) => x.agent_id === id);
		return p ? p.name : id === me().id ? me().name || "You" : "Agent";
	}

	function authorName(m) {
		if (m.author === "agent") return agentName(m.agent_id);
		if (m.author === "system") return "Microchat";
		const from = m.email && m.email.from;
		if (from && (from.name || from.addr)) return from.name || from.addr;
		return contactName(view && view.item);
	}

	function attachmentsNode(conversationID, atts) {
		return h(
			"ul",
			{ class: "attachments" },
			atts.map((a) => {
				const url = a.id ? `/api/v1/conversations/${conversationID}/attachments/${a.id}` : null;
				const label = a.name + (a.size != null ? ` (${formatSize(a.size)})` : "");
				if (url && INLINE_IMAGE.test(a.content_type || "")) {
					const img = h("img", { src: url, alt: a.name, loading: "lazy" });
					img.addEventListener("load", () => stick && scrollToEnd());
					return h(
						"li",
						{ class: "attachment image" },
						h("a", { href: url, target: "_blank", rel: "noopener", class: "preview", title: "Open " + a.name }, img),
						h("a", { href: url, download: a.name, class: "file", text: label }),
					);
				}
				return h(
					"li",
					{ class: "attachment" },
					url
						? h("a", { href: url, download: a.name, class: "file" }, icon(ICONS.file), h("span", { text: label }))
						: h("span", { class: "file" }, icon(ICONS.file), h("span", { text: label })),
				);
			}),
		);
	}

	function fillState(node, m) {
		node.className = "state state-" + m.state;
		const kids = [h("span", { class: "state-text", text: STATE_TEXT[m.state] || m.state })];
		if (m.channel === "email" && m.state !== "failed") kids.push(h("span", { class: "how", text: m.state === "queued" ? " · waiting to go by email" : " · by email" }));
		else if (m.state === "queued") kids.push(h("span", { class: "how", text: " · delivered when they return" }));
		if (m.state === "failed") {
			if (m.error) kids.push(h("span", { class: "why", text: ": " + m.error }));
			const retry = h("button", { type: "button", class: "link retry", text: "Retry" });
			retry.addEventListener("click", () => {
				// The stored reply failed on its way: send its text again
				// as a new reply, on the same channel.
				retry.disabled = true;
				retry.textContent = "Sent again below";
				replies.send(m.conversation_id, { text: m.text, channel: m.channel });
				scrollToEnd();
			});
			kids.push(" ", retry);
		}
		node.replaceChildren(...kids);
	}

	function messageNode(m) {
		const note = m.channel === "note";
		const email = m.channel === "email";
		const cls = ["msg", "author-" + m.author];
		if (note) cls.push("note");
		if (email) cls.push("email");
		const node = h("article", { class: cls.join(" "), "data-message-id": String(m.id), "data-seq": String(m.seq) });
		node.append(
			h(
				"div",
				{ class: "meta" },
				email ? envelope() : null,
				note ? h("span", { class: "note-label" }, icon(LOCK), "Private note") : null,
				h("span", { class: "author", text: authorName(m) }),
				h("time", { datetime: m.created_at, title: new Date(m.created_at).toLocaleString(), text: when(m.created_at) }),
			),
		);
		if (email && (m.html || m.email)) {
			let opened = view.opened.get(m.id);
			if (!opened) view.opened.set(m.id, (opened = {}));
			const ev = createEmailView(ctx, m, opened);
			node.append(ev.head, ev.details, ev.body);
		} else {
			node.append(h("div", { class: "text" }, linkify(m.text || "")));
		}
		if (m.attachments && m.attachments.length) node.append(attachmentsNode(m.conversation_id, m.attachments));
		if (m.author === "agent" && !note) {
			const st = h("div");
			fillState(st, m);
			node.append(st);
		}
		return node;
	}

	// place inserts a node among the items by its data-seq.
	function place(node, seq) {
		let after = items.lastElementChild;
		while (after && Number(after.dataset.seq) > seq) after = after.previousElementSibling;
		if (after) after.after(node);
		else items.prepend(node);
	}

	// addMessage shows a message once (by id); false if it was there.
	function addMessage(m) {
		const v = view;
		if (!v || m.conversation_id !== v.id || v.msgs.has(m.id)) return false;
		v.msgs.set(m.id, m);
		if (m.client_id && m.agent_id === me().id) v.clientIDs.add(m.client_id);
		const node = messageNode(m);
		v.nodes.set(m.id, node);
		place(node, m.seq);
		if (!v.oldest || m.seq < v.oldest) v.oldest = m.seq;
		return true;
	}

	function setState(id, state, error) {
		const m = view && view.msgs.get(id);
		if (!m) return;
		m.state = state;
		m.error = state === "failed" ? error || m.error : "";
		const node = view.nodes.get(id);
		const st = node && node.querySelector(":scope > .state");
		if (st) fillState(st, m);
	}

	function systemLine(ev, text) {
		const v = view;
		if (!v || v.lines.has(ev.seq)) return;
		v.lines.add(ev.seq);
		place(h("div", { class: "system-line author-system", "data-seq": String(ev.seq), role: "note" }, h("span", { text }), h("time", { datetime: ev.at, text: when(ev.at) })), ev.seq);
	}

	// line returns the system line's text of an event, or "".
	function lineText(ev) {
		const d = ev.data || {};
		switch (ev.type) {
			case "joined":
				return `${d.agent_name} joined the conversation` + (d.reopened ? " and reopened it" : "");
			case "left":
				return `${d.agent_name} left the conversation`;
			case "closed":
				return "The conversation was closed" + (d.survey_offered ? "; the visitor was offered the satisfaction survey" : "");
			case "rated":
				return `The visitor rated the conversation ${d.score}/5` + (d.comment ? `: “${d.comment}”` : "");
		}
		return "";
	}

	function drawOlder() {
		if (!view || view.loading) return older.replaceChildren();
		if (view.loadingOlder) older.replaceChildren(h("span", { text: "Loading earlier messages…" }));
		else if (view.olderError) older.replaceChildren(h("span", { class: "error", text: view.olderError }));
		else if (!view.hasBefore) older.replaceChildren(h("span", { text: view.msgs.size ? "Beginning of the conversation" : "No messages yet" }));
		else older.replaceChildren();
	}

	// --- pending replies ----------------------------------------------

	function pendingNode(r) {
		const note = r.channel === "note";
		const state = h("div", { class: "state state-" + r.status });
		if (r.status === "failed") {
			const retry = h("button", { type: "button", class: "link retry", text: "Retry" });
			retry.addEventListener("click", () => replies.retry(r.client_id));
			const discard = h("button", { type: "button", class: "link", text: "Discard" });
			discard.addEventListener("click", () => replies.discard(r.client_id));
			state.append(h("span", { class: "state-text", text: "Failed" }), h("span", { class: "why", text: ": " + r.error }), " ", retry, " ", discard);
		} else {
			state.append(h("span", { class: "state-text", text: r.status === "sending" ? "Sending…" : "Waiting for the connection…" }));
		}
		return h(
			"article",
			{ class: "msg author-agent pending" + (note ? " note" : ""), "data-client-id": r.client_id },
			h(
				"div",
				{ class: "meta" },
				note ? h("span", { class: "note-label" }, icon(LOCK), "Private note") : null,
				h("span", { class: "author", text: me().name || "You" }),
				h("time", { text: when(new Date(r.at).toISOString()) }),
			),
			h("div", { class: "text" }, linkify(r.text || "")),
			r.attachments && r.attachments.length ? attachmentsNode(r.conversation_id, r.attachments) : null,
			state,
		);
	}

	function drawPending() {
		if (!view) return pendingBox.replaceChildren();
		const list = replies.pending(view.id).filter((r) => !view.clientIDs.has(r.client_id));
		pendingBox.replaceChildren(...list.map(pendingNode));
		if (stick) scrollToEnd();
	}

	replies.onChange((conversationID, r, extra) => {
		if (!view) return;
		if (extra && extra.ack && extra.ack.message) addMessage(extra.ack.message);
		if (conversationID === 0 || conversationID === view.id) drawPending();
	});

	// --- scrolling ----------------------------------------------------

	function scrollToEnd() {
		list.scrollTop = list.scrollHeight;
		stick = true;
		jump.hidden = true;
	}

	list.addEventListener(
		"scroll",
		() => {
			stick = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
			if (stick) jump.hidden = true;
			if (list.scrollTop < OLDER_MARGIN) loadOlder();
		},
		{ passive: true },
	);
	jump.addEventListener("click", scrollToEnd);

	async function loadOlder() {
		const v = view;
		if (!v || v.loading || v.loadingOlder || !v.hasBefore || v.olderError) return;
		v.loadingOlder = true;
		drawOlder();
		try {
			const page = await ctx.api("GET", `/conversations/${v.id}/messages?before=${v.oldest}&limit=${PAGE}`);
			if (view !== v) return;
			// Keep what the agent looks at in place: the list grows above.
			const height = list.scrollHeight;
			const top = list.scrollTop;
			for (const m of page.messages) addMessage(m);
			v.hasBefore = page.has_before;
			v.loadingOlder = false;
			drawOlder();
			list.scrollTop = top + (list.scrollHeight - height);
		} catch (err) {
			if (view !== v) return;
			v.loadingOlder = false;
			v.olderError = "Could not load earlier messages: " + err.message;
			drawOlder();
			const again = h("button", { type: "button", class: "link", text: "Try again" });
			again.addEventListener("click", () => {
				v.olderError = "";
				loadOlder();
			});
			older.append(" ", again);
			return;
		}
		if (list.scrollTop < OLDER_MARGIN) requestAnimationFrame(loadOlder);
	}

	// --- live ---------------------------------------------------------

	function showTyping(on) {
		clearTimeout(typingTimer);
		typingEl.hidden = !on;
		typingEl.textContent = on ? `${contactName(view && view.item)} is typing…` : "";
		if (on) typingTimer = setTimeout(() => showTyping(false), TYPING_TTL_MS);
	}

	function apply(ev) {
		const v = view;
		const d = ev.data || {};
		if (v.item && ev.seq > (v.item.seq || 0)) v.item.seq = ev.seq;
		switch (ev.type) {
			case "message_added": {
				const m = d.message;
				if (!m) return;
				const near = stick;
				if (!addMessage(m)) return;
				if (m.client_id && m.agent_id === me().id) drawPending();
				if (m.author === "contact") {
					showTyping(false);
					if (v.item) v.item.unread = (v.item.unread || 0) + 1;
					if (d.reopened && v.item) {
						v.item.status = "open";
						drawHeader();
					}
					markRead();
				}
				if (near || (m.author === "agent" && m.agent_id === me().id)) scrollToEnd();
				else jump.hidden = false;
				return;
			}
			case "message_state":
				for (const id of d.message_ids || []) setState(id, d.state, d.error);
				return;
			case "messages_read":
				if (d.reader === "contact") for (const id of d.message_ids || []) setState(id, "read");
				else for (const id of d.message_ids || []) {
					const m = v.msgs.get(id);
					if (m) m.state = "read";
				}
				return;
			case "joined":
			case "left": {
				if (v.item) {
					const ps = (v.item.participants || []).filter((p) => p.agent_id !== d.agent_id);
					if (ev.type === "joined") {
						ps.push({ agent_id: d.agent_id, name: d.agent_name, responsible: d.responsible, presence: "online", joined_at: ev.at });
						v.item.status = "open";
					}
					v.item.participants = ps;
					drawHeader();
				}
				break;
			}
			case "closed":
				if (v.item) {
					v.item.status = "closed";
					drawHeader();
				}
				break;
			case "conversation_deleted":
				deleted();
				return;
		}
		const text = lineText(ev);
		if (text) {
			const near = stick;
			systemLine(ev, text);
			if (near) scrollToEnd();
		}
	}

	ctx.bus.on("event", ({ ev }) => {
		if (!view || !ev || ev.conversation_id !== view.id) return;
		if (view.loading) view.buffer.push(ev);
		else apply(ev);
	});
	ctx.bus.on("typing", (f) => {
		if (view && f.conversation_id === view.id) showTyping(!!f.typing);
	});
	ctx.bus.on("contact_presence", (f) => {
		const item = view && view.item;
		if (!item || !item.contact || item.contact.id !== f.contact_id) return;
		item.contact.online = !!f.online;
		drawHeader();
		composer.update(item);
	});
	ctx.bus.on("agent_presence", (f) => {
		if (view && view.item && (view.item.participants || []).some((p) => p.agent_id === f.agent_id)) {
			for (const p of view.item.participants) if (p.agent_id === f.agent_id) p.presence = f.presence;
			drawHeader();
		}
	});
	ctx.bus.on("resync", (id) => {
		if (view && (!id || id === view.id)) show(view.id, true);
	});
	ctx.bus.on("hello", () => {
		// Back from a drop: presence and participants may have changed
		// meanwhile (the events were resumed by conn.js).
		if (view && !view.loading) refreshItem();
	});
	ctx.bus.on("open", (id) => show(id));

	async function refreshItem() {
		const v = view;
		try {
			const item = await ctx.api("GET", `/conversations/${v.id}`);
			if (view !== v) return;
			item.unread = v.item ? v.item.unread : item.unread;
			v.item = item;
			drawHeader();
			composer.update(item);
		} catch {
			// The next event or hello tries again.
		}
	}

	// --- reading ------------------------------------------------------

	function lastSeq() {
		const last = items.lastElementChild;
		let seq = 0;
		for (const m of view.msgs.values()) if (m.seq > seq) seq = m.seq;
		return Math.max(seq, last ? Number(last.dataset.seq) || 0 : 0);
	}

	function markRead() {
		const v = view;
		// Read means seen: not while Reports, Admin or Profile hides the
		// conversation.
		if (!v || v.loading || document.visibilityState !== "visible" || !document.hasFocus() || el.closest("[hidden]")) return;
		let unread = v.item && v.item.unread > 0;
		for (const m of v.msgs.values()) if (m.author === "contact" && m.state !== "read" && m.seq > v.readSent) unread = true;
		const upTo = lastSeq();
		if (!unread || upTo <= v.readSent) return;
		v.readSent = upTo;
		ctx.api("POST", `/conversations/${v.id}/read`, { up_to: upTo }).then(
			() => {
				if (view !== v) return;
				for (const m of v.msgs.values()) if (m.author === "contact" && m.seq <= upTo) m.state = "read";
				if (v.item) {
					v.item.unread = 0;
					// The list's item, which follows every event (its
					// last message too), with nothing unread: this
					// view's copy keeps only what the header needs.
					const known = ctx.conversation && ctx.conversation(v.id);
					ctx.upsert(known ? { ...known, unread: 0 } : v.item);
				}
			},
			() => {
				if (view === v) v.readSent = 0;
			},
		);
	}
	window.addEventListener("focus", markRead);
	// Back on the conversations: after "open" has said which one is shown.
	ctx.bus.on("route", (r) => r === "conversations" && queueMicrotask(markRead));
	document.addEventListener("visibilitychange", markRead);

	// --- opening ------------------------------------------------------

	// show opens conversation id (0: none); force reloads the one shown.
	async function show(id, force) {
		id = Number(id) || 0;
		if (!force && ((view && view.id === id) || (!view && !id))) return;
		const g = ++gen;
		const again = force && view && view.id === id ? view : null; // drawn again
		const keepScroll = again && !stick;
		showTyping(false);
		notice.textContent = "";
		jump.hidden = true;
		items.replaceChildren();
		pendingBox.replaceChildren();
		if (dialog.open) dialog.close();
		if (!id) {
			view = null;
			delete el.dataset.id;
			delete el.dataset.state;
			el.classList.add("none");
			empty.replaceChildren(h("p", { text: "Choose a conversation from the list." }));
			header.replaceChildren();
			older.replaceChildren();
			composer.show(null);
			return;
		}
		el.classList.remove("none");
		el.dataset.id = String(id);
		el.dataset.state = "loading";
		const known = (ctx.conversation && ctx.conversation(id)) || null;
		view = {
			id,
			item: known ? structuredClone(known) : null,
			msgs: new Map(),
			nodes: new Map(),
			lines: new Set(),
			clientIDs: new Set(),
			oldest: 0,
			hasBefore: false,
			loading: true,
			loadingOlder: false,
			olderError: "",
			buffer: [],
			readSent: 0,
			// message id -> what the agent opened of it (emailview.js)
			opened: again ? again.opened : new Map(),
		};
		const v = view;
		drawHeader();
		drawOlder();
		composer.show(v.item || { id, contact: {}, placeholder: true });
		try {
			const [item, page] = await Promise.all([
				ctx.api("GET", `/conversations/${id}`),
				ctx.api("GET", `/conversations/${id}/messages?limit=${PAGE}`),
			]);
			if (g !== gen) return;
			v.item = item;
			ctx.upsert(item);
			for (const m of page.messages) addMessage(m);
			v.hasBefore = page.has_before;
			v.loading = false;
			const buffered = v.buffer;
			v.buffer = [];
			for (const ev of buffered) apply(ev);
			drawHeader();
			drawOlder();
			drawPending();
			composer.update(item);
			if (!keepScroll) scrollToEnd();
			el.dataset.state = "ready";
			ctx.bus.emit("thread:shown", id);
			markRead();
			if (list.scrollHeight <= list.clientHeight + OLDER_MARGIN) loadOlder();
			historyLines(v, page.messages.length ? page.messages[0].seq : 0, !page.has_before);
		} catch (err) {
			if (g !== gen) return;
			v.loading = false;
			el.dataset.state = "error";
			if (err.status === 404) {
				show(0);
				empty.replaceChildren(h("p", { text: "This conversation does not exist any more." }));
				return;
			}
			const again = h("button", { type: "button", class: "link", text: "Try again" });
			again.addEventListener("click", () => show(id, true));
			notice.replaceChildren("Could not load the conversation: " + err.message + " ", again);
		}
	}

	// historyLines adds the system lines (joined, left, closed, rated) of
	// the loaded page from the conversation's kept events, after the page
	// is shown: those from first (the seq of the page's first message, 0
	// when it has none) on, and when the page is the whole conversation
	// (whole) also those before its first message, such as a JOIN before
	// any message. Older pages have none (events are not paged backwards,
	// and old ones are pruned).
	async function historyLines(v, first, whole) {
		const tries = whole ? [0] : [];
		if (first) tries.push(first - 1);
		for (const after of tries) {
			try {
				const ans = await ctx.api("GET", `/conversations/${v.id}/events?after=${after}`);
				if (view !== v) return;
				const near = stick;
				for (const ev of ans.events || []) {
					const text = lineText(ev);
					if (text) systemLine(ev, text);
				}
				if (near) scrollToEnd();
				return;
			} catch {
				// Pruned (409): the events from the first message may
				// still be kept. Unavailable: the lines are a courtesy.
			}
		}
	}

	// --- files dropped on the thread ----------------------------------

	let dragDepth = 0;
	const hasFiles = (e) => view && e.dataTransfer && [...e.dataTransfer.types].includes("Files");
	el.addEventListener("dragenter", (e) => {
		if (!hasFiles(e)) return;
		e.preventDefault();
		dragDepth++;
		el.classList.add("dropping");
	});
	el.addEventListener("dragover", (e) => {
		if (!hasFiles(e)) return;
		e.preventDefault();
		e.dataTransfer.dropEffect = "copy";
	});
	el.addEventListener("dragleave", () => {
		if (--dragDepth <= 0) {
			dragDepth = 0;
			el.classList.remove("dropping");
		}
	});
	el.addEventListener("drop", (e) => {
		dragDepth = 0;
		el.classList.remove("dropping");
		if (!hasFiles(e)) return;
		e.preventDefault();
		composer.addFiles([...e.dataTransfer.files]);
	});

	// --- keyboard -----------------------------------------------------

	list.addEventListener("keydown", (e) => {
		if (e.target !== list || e.altKey || e.ctrlKey || e.metaKey) return;
		if (e.key === "Enter" || e.key === "r") {
			e.preventDefault();
			composer.focus();
		} else if (e.key === "Home") {
			e.preventDefault();
			list.scrollTop = 0;
		} else if (e.key === "End") {
			e.preventDefault();
			scrollToEnd();
		}
	});

	el.classList.add("none");
	composer.show(null);
	show(ctx.current ? ctx.current() : 0);
	return {
		show,
		focusComposer: () => composer.focus(),
	};
}
