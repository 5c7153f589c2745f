// The widget's controller: it holds the visitor's conversation as the
// server last told it, hands the socket's frames to the views, and keeps
// what must survive a reload or another page of the site (store.js).
//
// The conversation is loaded with GET /state, then the socket resumes
// from its seq: events after it come in order, each applied once
// (ordering.js drops those at or below what is held, and has those after a
// gap wait). A resync, a gap, or a hello about another conversation, loads
// /state again and reconnects from there.
import { initStore, getToken, setToken } from "./store.js";
import { createApi } from "./api.js";
import { createSocket } from "./socket.js";
import { createOrdering } from "./ordering.js";
import { createShell } from "./shell.js";
import { createOutbox } from "./outbox.js";
import { createSending } from "./sending.js";
import { createUploads } from "./uploads.js";
import { createSurvey } from "./survey.js";
import { createPageViews } from "./pageviews.js";
import { createAgents } from "./agents.js";
import { createReads } from "./reads.js";
import { createListeners, messageEvent, microchatApi } from "./microchat.js";
import { wait, sentence } from "./text.js";

// createApp builds the widget in root (the shadow root) for cfg
// (config.js) and returns boot, which starts it, and the page's API.
export function createApp(cfg, root) {
	initStore(cfg.origin);
	const api = createApi(cfg.origin, getToken);
	const listeners = createListeners();
	let contact = null;
	let conv = null; // {id, status, seq}

	const shell = createShell(cfg, root, {
		start,
		send: (text) => sending.send(text),
		files: (files) => uploads.send(files),
		typing: (t) => socket.send({ type: "typing", typing: t }),
		older: loadOlder,
		fetchFile: (id) => uploads.fetch(id),
		opened() {
			reads.markRead();
			render();
			listeners.emit("open");
		},
		closed() {
			render();
			listeners.emit("close");
		},
	});
	const { panel, form, msgs, composer, status, launcher } = shell;
	const outbox = createOutbox((f) => socket.send(f), { msgs, composer });
	const sending = createSending(outbox, panel);
	const survey = createSurvey(api, msgs);
	const agents = createAgents(render);
	const reads = createReads((f) => socket.send(f), shell.reading, render);
	const uploads = createUploads(api, { msgs, panel }, (p) => outbox.queue(p), () => conv !== null);

	const order = createOrdering(() => loadState(true), { gaps: true });
	const socket = createSocket(cfg.origin.replace(/^http/, "ws") + "/api/v1/widget/ws", {
		auth: () => ({ type: "auth", token: getToken(), last_seq: conv ? conv.seq : 0, conversation_id: conv ? conv.id : 0 }),
		onFrame: frame,
		onStatus: (s) => panel.connection(s === "reconnecting" ? "Reconnecting..." : ""),
		onUnauthorized: expired,
		onDropped: (code, f) => sending.dropped(code, f),
	});
	const pages = createPageViews((f) => socket.send(f));

	function render() {
		const a = agents.shown();
		let mode = "none";
		if (conv && conv.status === "closed") mode = "ended";
		else if (a) mode = "agent";
		else if (conv) mode = "waiting";
		status.render({ mode, agent: a });
		msgs.typing(agents.typingNames());
		msgs.receipts(reads.seen());
		launcher.setUnread(shell.isOpen() ? 0 : reads.unread());
	}

	// The conversation.

	function reset() {
		conv = null;
		agents.clear();
		reads.reset();
		survey.reset();
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
		uploads.setLimit((s.limits && s.limits.max_upload_bytes) || 0);
		sending.setLimit((s.limits && s.limits.max_message_bytes) || 0);
		if (!s.conversation) {
			shell.showForm(contact);
		} else {
			conv = { id: s.conversation.id, status: s.conversation.status, seq: s.conversation.seq };
			order.reset(conv.id, conv.seq);
			agents.authors(s.authors);
			agents.set(s.agents);
			showHistory(s, (m) => {
				addMessage(m, false);
				reads.history(m);
			});
			msgs.hasOlder(s.has_before);
			survey.restore(s.rating);
			if (conv.status === "closed") survey.offer(conv.seq);
			outbox.showPending();
			shell.showChat();
			render();
			msgs.scrollDown();
			reads.markRead();
		}
		if (reconnect) {
			socket.close();
			socket.connect();
		}
	}

	async function loadOlder() {
		try {
			const r = await api.older(msgs.firstSeq());
			msgs.keepPosition(() => showHistory(r, (m) => addMessage(m, false)));
			msgs.hasOlder(r.has_before);
			render();
		} catch (e) {
			panel.error(e.message, 10000);
		}
	}

	// showHistory shows a page of history (from /state or /messages): its
	// messages, each through add, and its system lines (joined, left,
	// closed events), in seq order as they were shown live.
	function showHistory(page, add) {
		const items = [...(page.messages || []), ...(page.events || [])].sort((a, b) => a.seq - b.seq);
		for (const x of items) {
			if (x.type) {
				const d = x.data || {};
				if (x.type === "joined") agents.joinName(d.agent_id, d.agent_name);
				const t = sysText(x);
				if (t) msgs.system(t, x.seq);
			} else add(x);
		}
	}

	// sysText is the line an event shows in the conversation, if any.
	function sysText(ev) {
		const d = ev.data || {};
		if (ev.type === "joined") return d.agent_name + " joined the chat";
		if (ev.type === "left") return d.agent_name + " left the chat";
		if (ev.type === "closed") return "The chat has ended";
		return "";
	}

	function addMessage(m, live) {
		reads.added(m);
		if (m.client_id) outbox.drop(m.client_id);
		const name = agents.nameOf(m.agent_id);
		msgs.add(m, name);
		if (live && m.author === "agent") {
			agents.wrote(m.agent_id);
			shell.announce(name + ": " + (m.text || "sent a file"));
			listeners.emit("message", messageEvent(m, name));
		}
	}

	function reopen() {
		conv.status = "open";
		survey.reopened();
	}

	function applyEvent(ev) {
		if (!conv || ev.conversation_id !== conv.id) return;
		if (ev.seq) conv.seq = ev.seq;
		const d = ev.data || {};
		switch (ev.type) {
			case "message_added":
				if (d.reopened) reopen();
				addMessage(d.message, true);
				reads.markRead();
				break;
			case "joined":
				if (d.reopened) reopen();
				agents.joined(d);
				msgs.system(sysText(ev), ev.seq);
				shell.announce(d.agent_name + " joined the chat.");
				break;
			case "left":
				agents.left(d.agent_id);
				msgs.system(sysText(ev), ev.seq);
				break;
			case "closed":
				conv.status = "closed";
				agents.clear();
				msgs.system(sysText(ev), ev.seq);
				if (d.survey_offered !== false) survey.offer(ev.seq);
				shell.announce("The chat has ended. How would you rate it?");
				break;
			case "messages_read":
				reads.read(d);
				break;
			case "rated":
				survey.rated(d);
				break;
			case "conversation_deleted":
				reset();
				outbox.dropAll();
				shell.showForm(contact);
				panel.error("This conversation was deleted. You can start a new chat.");
				break;
		}
		render();
	}

	// The socket.

	function frame(f) {
		switch (f.type) {
			case "hello":
				outbox.connected();
				if (f.contact) contact = f.contact;
				if (!f.conversation) {
					reset();
					shell.showForm(contact);
				} else if (!conv || f.conversation.id !== conv.id) {
					loadState(true);
					return;
				} else {
					conv.status = f.conversation.status;
					agents.set(f.agents);
				}
				pages.flush();
				outbox.flush();
				reads.markRead();
				render();
				break;
			case "event":
				for (const ev of order.take(f.event)) applyEvent(ev);
				break;
			case "resync":
				loadState(true);
				break;
			case "ack":
				outbox.drop(f.client_id);
				if (f.message) addMessage(f.message, false);
				render();
				break;
			case "typing":
				agents.typing(f.agent_id, f.typing);
				break;
			case "presence":
				agents.presence(f);
				render();
				break;
			case "error":
				sending.refused(f);
				break;
		}
	}


	// Start Chat.

	async function start(v) {
		pages.take();
		form.busy(true);
		panel.error("");
		try {
			const r = await api.start({ name: v.name, email: v.email || undefined, phone: v.phone || undefined, pages: pages.saved() });
			pages.sent();
			setToken(r.token);
			await loadState(true);
			composer.focus();
		} catch (e) {
			if (e.status === 429) panel.error(wait(e.retryAfter));
			// "name: must not contain NUL characters" under the Name field
			// names the field once: "must not contain NUL characters."
			else if (e.field) form.setError(e.field, sentence(/^(name|email|phone)$/.test(e.field) && e.message.startsWith(e.field + ": ") ? e.message.slice(e.field.length + 2) : e.message));
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
		outbox.dropAll();
		shell.showForm(contact);
		panel.error("Your chat session has expired. Please start a new chat.");
	}

	function boot() {
		pages.first();
		if (getToken()) loadState(true);
		else shell.showForm(contact);
		shell.restore();
	}

	return { boot, api: microchatApi(shell, listeners) };
}
