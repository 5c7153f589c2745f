// The widget's controller: it holds the visitor's conversation as the
// server last told it, hands the socket's frames to the views, and keeps
// what must survive a reload or another page of the site (store.js).
//
// The conversation is loaded with GET /state, then the socket resumes
// from its seq: events after it come in order, each applied once (an event
// at or below conv.seq is ignored). A resync, or a hello about another
// conversation, loads /state again and reconnects from there.
import { h, randomId, formatSize } from "./dom.js";
import { initStore, getToken, setToken, load, save } from "./store.js";
import { createApi } from "./api.js";
import { createSocket } from "./socket.js";
import { createLauncher } from "./launcher.js";
import { createPanel } from "./panel.js";
import { createStatus } from "./status.js";
import { createPrechat } from "./prechat.js";
import { createMessages } from "./messages.js";
import { createComposer, dropZone } from "./composer.js";
import { createRating } from "./rating.js";
import { WIDGET_CSS } from "./css.js";

function seconds(s) {
	s = Math.max(1, Math.ceil(s || 5));
	return s + (s === 1 ? " second" : " seconds");
}

// wait says how long to wait after a 429.
function wait(s) {
	return "Too many attempts. Please wait " + seconds(s) + " and try again.";
}

// sentence makes a server's error message a sentence.
function sentence(s) {
	s = String(s || "").trim();
	return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".");
}

// createApp builds the widget in root (the shadow root) for cfg
// (config.js) and returns boot, which starts it, and the page's API.
export function createApp(cfg, root) {
	initStore(cfg.origin);
	const api = createApi(cfg.origin, getToken);
	const listeners = { message: [], open: [], close: [] };
	const blobs = new Map(); // attachment id -> promise of a blob URL
	const names = new Map(); // agent id -> name, also of agents who left
	const agentSeqs = new Set(); // seqs of the agents' messages
	const typingTimers = new Map();
	let contact = null;
	let conv = null; // {id, status, seq}
	let agents = []; // {id, name, presence, responsible, typing}
	let seen = 0; // the agents read the visitor's messages up to this seq
	let readUpTo = 0; // the visitor read the agents' messages up to this seq
	let rated = null;
	let rating = null; // {view, li}: the survey in the list
	let opened = false;
	let pageSent = false;
	let sentOnConn = new Set(); // client ids sent on this connection
	let identity = {};
	let maxUpload = 0; // bytes; 0 when the server does not say
	let outbox = load("outbox", [], true); // {client_id, text, attachments, hold?}

	const launcher = createLauncher(() => (opened ? close(true) : open(true)));
	const panel = createPanel(cfg.title, () => close(true));
	const status = createStatus();
	const form = createPrechat(start);
	const msgs = createMessages({ fetchFile, onOlder: loadOlder, onError: (t) => panel.error(t, 10000) });
	const composer = createComposer({
		onSend: (text) => queue(text, []),
		onFiles: sendFiles,
		onTyping: (t) => socket.send({ type: "typing", typing: t }),
		onDraft: (v) => save("draft", v || null, true),
	});
	const chat = h("div", { class: "chat", hidden: true }, status.el, msgs.el, composer.el);
	dropZone(chat, sendFiles);
	const announcer = h("div", { class: "sr", "aria-live": "polite" });
	panel.body.append(form.el, chat);
	const wrap = h("div", { class: "mc " + cfg.position }, panel.el, launcher.el, announcer);
	if (cfg.color) {
		wrap.style.setProperty("--mc-accent", cfg.color);
		wrap.style.setProperty("--mc-accent-ink", cfg.ink);
		// A light accent is not readable as text or icons on white.
		if (cfg.ink !== "#fff") wrap.style.setProperty("--mc-accent-fg", "#1d2329");
	}
	// A constructed style sheet works under a page's strict CSP
	// (style-src without 'unsafe-inline'), which blocks a <style>.
	try {
		const sheet = new CSSStyleSheet();
		sheet.replaceSync(WIDGET_CSS);
		root.adoptedStyleSheets = [sheet];
	} catch {
		root.append(h("style", { text: WIDGET_CSS }));
	}
	root.append(wrap);
	composer.setDraft(load("draft", "", true));

	const socket = createSocket(cfg.origin, {
		auth: () => ({ type: "auth", token: getToken(), last_seq: conv ? conv.seq : 0, conversation_id: conv ? conv.id : 0 }),
		onFrame: frame,
		onStatus: (s) => panel.connection(s === "reconnecting" ? "Reconnecting..." : ""),
		onUnauthorized: expired,
	});

	function emit(name, data) {
		for (const fn of listeners[name] || []) {
			try {
				fn(data);
			} catch (e) {
				console.error("Microchat " + name + " listener:", e);
			}
		}
	}

	function announce(text) {
		announcer.textContent = text;
	}

	function pageInfo() {
		return { url: location.href.slice(0, 2048), title: document.title.slice(0, 300), referrer: document.referrer.slice(0, 2048) };
	}

	// Views.

	function showForm() {
		chat.hidden = true;
		form.el.hidden = false;
		form.fill({ name: contact && contact.name, email: contact && contact.email, phone: contact && contact.phone });
		form.fill(identity);
	}

	function showChat() {
		form.el.hidden = true;
		chat.hidden = false;
		render();
	}

	function render() {
		const a = agents.find((x) => x.responsible) || agents[0];
		let mode = "none";
		if (conv && conv.status === "closed") mode = "ended";
		else if (a) mode = "agent";
		else if (conv) mode = "waiting";
		status.render({ mode, agent: a });
		msgs.typing(agents.filter((x) => x.typing).map((x) => x.name));
		msgs.receipts(seen);
		const unread = [...agentSeqs].filter((s) => s > readUpTo).length;
		launcher.setUnread(opened ? 0 : unread);
	}

	function open(user) {
		opened = true;
		panel.el.hidden = false;
		wrap.classList.add("open");
		launcher.setOpen(true);
		save("open", true, true);
		if (user) (chat.hidden ? form : composer).focus();
		msgs.scrollDown();
		markRead();
		render();
		emit("open");
	}

	function close(user) {
		const inside = panel.el.contains(root.activeElement);
		opened = false;
		panel.el.hidden = true;
		wrap.classList.remove("open");
		launcher.setOpen(false);
		save("open", false, true);
		if (user || inside) launcher.button.focus();
		render();
		emit("close");
	}

	// The conversation.

	function reset() {
		conv = null;
		agents = [];
		seen = readUpTo = 0;
		agentSeqs.clear();
		rated = null;
		rating = null;
		msgs.clear();
	}

	// loadState loads the conversation; then, with reconnect, resumes the
	// socket from it. It tries again with backoff while the server cannot
	// be reached.
	async function loadState(reconnect, attempt = 0) {
		let s;
		try {
			s = await api.state();
		} catch (e) {
			if (e.status === 401) return expired();
			panel.connection("Reconnecting...");
			setTimeout(() => loadState(reconnect, attempt + 1), Math.random() * Math.min(30000, 500 * 2 ** attempt));
			return;
		}
		panel.connection("");
		reset();
		contact = s.contact;
		maxUpload = (s.limits && s.limits.max_upload_bytes) || 0;
		if (!s.conversation) {
			showForm();
		} else {
			conv = { id: s.conversation.id, status: s.conversation.status, seq: s.conversation.seq };
			agents = (s.agents || []).map((a) => ({ ...a, typing: false }));
			for (const a of s.authors || []) names.set(a.id, a.name);
			for (const a of agents) names.set(a.id, a.name);
			for (const m of s.messages || []) {
				addMessage(m, false);
				if (m.state === "read" && m.author === "contact") seen = Math.max(seen, m.seq);
				if (m.state === "read" && m.author === "agent") readUpTo = Math.max(readUpTo, m.seq);
			}
			msgs.hasOlder(s.has_before);
			rated = s.rating || null;
			if (conv.status === "closed") offerRating(conv.seq);
			for (const p of outbox) msgs.addPending(p, p.hold > Date.now() ? "Waiting to send..." : "");
			showChat();
			msgs.scrollDown();
			markRead();
		}
		if (reconnect) {
			socket.close();
			socket.connect();
		}
	}

	async function loadOlder() {
		try {
			const r = await api.older(msgs.firstSeq());
			msgs.keepPosition(() => r.messages.forEach((m) => addMessage(m, false)));
			msgs.hasOlder(r.has_before);
			render();
		} catch (e) {
			panel.error(e.message, 10000);
		}
	}

	function addMessage(m, live) {
		if (m.author === "agent") agentSeqs.add(m.seq);
		if (m.client_id) dropOutbox(m.client_id);
		const name = names.get(m.agent_id) || "Support";
		msgs.add(m, name);
		if (live && m.author === "agent") {
			const a = agents.find((x) => x.id === m.agent_id);
			if (a) a.typing = false;
			announce(name + ": " + (m.text || "sent a file"));
			emit("message", {
				id: m.id,
				text: m.text,
				author: m.author,
				agent_name: name,
				created_at: m.created_at,
				attachments: (m.attachments || []).map((x) => ({ name: x.name, content_type: x.content_type, size: x.size })),
			});
		}
	}

	function offerRating(seq) {
		if (rating) return;
		const view = createRating(async (score, comment) => {
			view.busy(true);
			try {
				rated = (await api.rate(score, comment || undefined)).rating;
				view.done(score);
			} catch (e) {
				view.error(e.status === 429 ? wait(e.retryAfter) : sentence(e.message));
				view.busy(false);
			}
		});
		if (rated) view.done(rated.score);
		rating = { view, li: msgs.card(view.el, seq) };
	}

	function reopen() {
		conv.status = "open";
		if (rating && !rated) rating.li.remove();
		if (!rated) rating = null;
	}

	function applyEvent(ev) {
		if (!conv || ev.conversation_id !== conv.id || (ev.seq && ev.seq <= conv.seq)) return;
		if (ev.seq) conv.seq = ev.seq;
		const d = ev.data || {};
		switch (ev.type) {
			case "message_added":
				if (d.reopened) reopen();
				addMessage(d.message, true);
				markRead();
				break;
			case "joined":
				if (d.reopened) reopen();
				names.set(d.agent_id, d.agent_name);
				if (!agents.some((a) => a.id === d.agent_id)) agents.push({ id: d.agent_id, name: d.agent_name, responsible: d.responsible, presence: "online", typing: false });
				msgs.system(d.agent_name + " joined the chat", ev.seq);
				announce(d.agent_name + " joined the chat.");
				break;
			case "left":
				agents = agents.filter((a) => a.id !== d.agent_id);
				msgs.system(d.agent_name + " left the chat", ev.seq);
				break;
			case "closed":
				conv.status = "closed";
				agents = [];
				msgs.system("The chat has ended", ev.seq);
				if (d.survey_offered !== false) offerRating(ev.seq);
				announce("The chat has ended. How would you rate it?");
				break;
			case "messages_read":
				if (d.reader === "agent") seen = Math.max(seen, d.up_to);
				else readUpTo = Math.max(readUpTo, d.up_to);
				break;
			case "rated":
				rated = d;
				if (rating) rating.view.done(d.score);
				break;
			case "conversation_deleted":
				reset();
				outbox = [];
				save("outbox", null, true);
				showForm();
				panel.error("This conversation was deleted. You can start a new chat.");
				break;
		}
		render();
	}

	// The socket.

	function frame(f) {
		switch (f.type) {
			case "hello":
				sentOnConn = new Set();
				if (f.contact) contact = f.contact;
				if (!f.conversation) {
					reset();
					showForm();
				} else if (!conv || f.conversation.id !== conv.id) {
					loadState(true);
					return;
				} else {
					conv.status = f.conversation.status;
					agents = (f.agents || []).map((a) => ({ ...a, typing: false }));
					for (const a of agents) names.set(a.id, a.name);
				}
				if (!pageSent) pageSent = socket.send({ type: "page_view", ...pageInfo() });
				flush();
				markRead();
				render();
				break;
			case "event":
				applyEvent(f.event);
				break;
			case "resync":
				loadState(true);
				break;
			case "ack":
				dropOutbox(f.client_id);
				if (f.message) addMessage(f.message, false);
				render();
				break;
			case "typing":
				agentTyping(f.agent_id, f.typing);
				break;
			case "presence": {
				// Also sent when an agent renames themselves: the name is theirs now.
				const a = agents.find((x) => x.id === f.agent_id);
				if (a) a.presence = f.presence;
				if (a && f.name) a.name = f.name;
				if (f.name && names.has(f.agent_id)) names.set(f.agent_id, f.name);
				render();
				break;
			}
			case "error":
				socketError(f);
				break;
		}
	}

	function agentTyping(id, typing) {
		const a = agents.find((x) => x.id === id);
		if (!a) return;
		a.typing = typing;
		clearTimeout(typingTimers.get(id));
		// A lost "stopped typing" frame must not leave the indicator on.
		if (typing) typingTimers.set(id, setTimeout(() => agentTyping(id, false), 10000));
		render();
	}

	function socketError(f) {
		const p = f.client_id && outbox.find((x) => x.client_id === f.client_id);
		if (f.code === "rate_limited") {
			const s = f.retry_after || 5;
			panel.error("You are sending messages too quickly. Please wait " + seconds(s) + ": we will send yours then.", s * 1000);
			if (p) {
				p.hold = Date.now() + s * 1000;
				saveOutbox();
				sentOnConn.delete(p.client_id);
				msgs.addPending(p, "Waiting to send...");
				setTimeout(flush, s * 1000 + 50);
			}
		} else if (p && f.code === "unavailable") {
			sentOnConn.delete(p.client_id);
			setTimeout(flush, 3000);
		} else if (p) {
			dropOutbox(p.client_id);
			msgs.addPending(p, "Not sent: " + sentence(f.error));
		}
	}

	// Sending.

	function saveOutbox() {
		save("outbox", outbox.length ? outbox : null, true);
	}

	function dropOutbox(id) {
		const n = outbox.length;
		outbox = outbox.filter((p) => p.client_id !== id);
		if (outbox.length !== n) saveOutbox();
	}

	function queue(text, attachments) {
		const p = { client_id: randomId(), text, attachments };
		outbox.push(p);
		saveOutbox();
		msgs.addPending(p);
		flush();
	}

	// flush sends the messages the server has not acknowledged, once per
	// connection: the server stores each client id once, however often.
	function flush() {
		for (const p of outbox) {
			if (sentOnConn.has(p.client_id) || p.hold > Date.now()) continue;
			const frame = { type: "message", client_id: p.client_id, text: p.text, attachment_ids: p.attachments.map((a) => a.id) };
			if (!socket.send(frame)) return;
			sentOnConn.add(p.client_id);
			msgs.addPending(p);
		}
	}

	async function sendFiles(files) {
		if (!conv) return;
		for (const file of files) {
			const name = file.name || "image.png";
			if (maxUpload && file.size > maxUpload) {
				panel.error("\u201c" + name + "\u201d is too large (" + formatSize(file.size) + "): files up to " + formatSize(maxUpload) + " can be sent.");
				continue;
			}
			const tmp = { client_id: randomId(), text: "", attachments: [{ name }] };
			msgs.addPending(tmp, "Uploading...");
			try {
				const r = await api.upload(file);
				msgs.removePending(tmp.client_id);
				queue("", [r.attachment]);
			} catch (e) {
				msgs.removePending(tmp.client_id);
				panel.error(uploadError(name, e));
			}
		}
	}

	function uploadError(name, e) {
		const q = "\u201c" + name + "\u201d";
		if (e.status === 413) return q + " is too large to send. " + sentence(e.message);
		if (e.status === 415) return q + " cannot be sent. " + sentence(e.message);
		if (e.status === 429) return wait(e.retryAfter);
		if (e.status === 0) return q + " could not be sent: the upload failed. The file may be too large, or the connection dropped.";
		return q + " could not be sent. " + sentence(e.message);
	}

	function fetchFile(id) {
		if (!blobs.has(id)) {
			const p = api.attachment(id).then((b) => URL.createObjectURL(b));
			p.catch(() => blobs.delete(id));
			blobs.set(id, p);
		}
		return blobs.get(id);
	}

	// markRead tells the server the visitor has seen the agents' messages,
	// when the panel is open on a visible page.
	function markRead() {
		if (!opened || chat.hidden || document.visibilityState !== "visible") return;
		const top = Math.max(0, ...agentSeqs);
		if (top > readUpTo && socket.send({ type: "read", up_to: top })) readUpTo = top;
		render();
	}
	document.addEventListener("visibilitychange", markRead);

	// Start Chat.

	async function start(v) {
		form.busy(true);
		panel.error("");
		try {
			const r = await api.start({ name: v.name, email: v.email || undefined, phone: v.phone || undefined, pages: load("pages", []) });
			save("pages", null);
			setToken(r.token);
			pageSent = true;
			await loadState(true);
			composer.focus();
		} catch (e) {
			if (e.status === 429) panel.error(wait(e.retryAfter));
			else if (e.field) form.setError(e.field, sentence(e.field + " " + e.message.replace(new RegExp("^" + e.field + " "), "")));
			else panel.error(sentence(e.message));
		} finally {
			form.busy(false);
		}
	}

	// expired forgets a token the server refused, and shows the form.
	function expired() {
		setToken(null);
		socket.close();
		reset();
		contact = null;
		outbox = [];
		saveOutbox();
		showForm();
		panel.error("Your chat session has expired. Please start a new chat.");
	}

	function boot() {
		if (getToken()) {
			loadState(true);
		} else {
			const pages = load("pages", []);
			pages.push({ ...pageInfo(), at: new Date().toISOString() });
			save("pages", pages.slice(-20));
			showForm();
		}
		const was = load("open", null, true);
		if (was || (was === null && cfg.open)) open(false);
	}

	return {
		boot,
		api: {
			// open shows the panel and moves the focus into it.
			open: () => open(true),
			// close minimizes the panel; nothing is lost.
			close: () => close(false),
			// identify fills the pre-chat form's empty fields.
			identify(v) {
				v = v || {};
				identity = { name: v.name || "", email: v.email || "", phone: v.phone || "" };
				form.fill(identity);
			},
			// on calls fn on "message" (a message from an agent arrived:
			// {id, text, author, agent_name, created_at, attachments}),
			// "open" and "close".
			on(name, fn) {
				if (listeners[name] && typeof fn === "function") listeners[name].push(fn);
			},
			off(name, fn) {
				if (listeners[name]) listeners[name] = listeners[name].filter((f) => f !== fn);
			},
		},
	};
}
