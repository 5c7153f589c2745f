// Loading the conversation: GET /state, after which the socket resumes
// from its seq (events.js); a resync, a gap (ordering.js), or a hello
// about another conversation, loads it again and reconnects from there.
// GET /messages pages back through the history. These are functions of
// the widget's parts, w (app.js).
import { setToken } from "./store.js";

// loadState loads the conversation and shows it; then, with reconnect,
// resumes the socket from it. It tries again with backoff while the
// server cannot be reached.
export async function loadState(w, reconnect, attempt = 0) {
	let s;
	try {
		s = await w.api.state();
	} catch (e) {
		if (e.status === 401) return expired(w);
		w.shell.panel.connection("Reconnecting...");
		setTimeout(() => loadState(w, reconnect, attempt + 1), Math.random() * Math.min(30000, 500 * 2 ** attempt));
		return;
	}
	w.shell.panel.connection("");
	showState(w, s);
	if (reconnect) {
		w.socket.close();
		w.socket.connect();
	}
}

// showState shows s, what GET /state returned: the pre-chat form when
// there is no conversation; else its history, its agents, the survey if
// it ended, and the messages not yet sent after them.
function showState(w, s) {
	const { conversation: c, shell, agents, reads, survey } = w;
	c.reset();
	c.contact = s.contact;
	w.uploads.setLimit((s.limits && s.limits.max_upload_bytes) || 0);
	w.sending.setLimit((s.limits && s.limits.max_message_bytes) || 0);
	if (!s.conversation) {
		shell.showForm(c.contact);
		return;
	}
	c.conv = { id: s.conversation.id, status: s.conversation.status, seq: s.conversation.seq };
	w.order.reset(c.conv.id, c.conv.seq);
	agents.authors(s.authors);
	agents.set(s.agents);
	showHistory(w, s, (m) => {
		c.add(m, false);
		reads.history(m);
	});
	shell.msgs.hasOlder(s.has_before);
	survey.restore(s.rating);
	if (c.conv.status === "closed") survey.offer(c.conv.seq);
	w.outbox.showPending();
	shell.showChat();
	c.render();
	shell.msgs.scrollDown();
	reads.markRead();
}

// loadOlder shows the page of history before the first message shown.
export async function loadOlder(w) {
	const { msgs, panel } = w.shell;
	try {
		const r = await w.api.older(msgs.firstSeq());
		msgs.keepPosition(() => showHistory(w, r, (m) => w.conversation.add(m, false)));
		msgs.hasOlder(r.has_before);
		w.conversation.render();
	} catch (e) {
		panel.error(e.message, 10000);
	}
}

// showHistory shows a page of history (from /state or /messages): its
// messages, each through add, and its system lines (joined, left, closed
// events), in seq order as they were shown live.
function showHistory(w, page, add) {
	const items = [...(page.messages || []), ...(page.events || [])].sort((a, b) => a.seq - b.seq);
	for (const x of items) {
		if (x.type) {
			const d = x.data || {};
			if (x.type === "joined") w.agents.joinName(d.agent_id, d.agent_name);
			const t = sysText(x);
			if (t) w.shell.msgs.system(t, x.seq);
		} else add(x);
	}
}

// sysText is the line an event shows in the conversation, if any.
export function sysText(ev) {
	const d = ev.data || {};
	if (ev.type === "joined") return d.agent_name + " joined the chat";
	if (ev.type === "left") return d.agent_name + " left the chat";
	if (ev.type === "closed") return "The chat has ended";
	return "";
}

// expired forgets a token the server refused, and shows the form.
export function expired(w) {
	setToken(null);
	w.socket.close();
	w.conversation.contact = null;
	w.conversation.lost("Your chat session has expired. Please start a new chat.");
}
