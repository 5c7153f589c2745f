// What the socket brings (docs/widget-protocol.md): the hello that opens
// each connection, the conversation's events, each applied once and in
// seq order (ordering.js), and the frames about this connection: acks of
// the visitor's messages, errors, agents typing and their presence. These
// are functions of the widget's parts, w (app.js).
import { loadState, sysText } from "./state.js";

// onFrame takes a frame from the socket.
export function onFrame(w, f) {
	switch (f.type) {
		case "hello":
			hello(w, f);
			break;
		case "event":
			for (const ev of w.order.take(f.event)) applyEvent(w, ev);
			break;
		case "resync":
			loadState(w, true);
			break;
		case "ack":
			w.outbox.drop(f.client_id);
			if (f.message) w.conversation.add(f.message, false);
			w.conversation.render();
			break;
		case "typing":
			w.agents.typing(f.agent_id, f.typing);
			break;
		case "presence":
			w.agents.presence(f);
			w.conversation.render();
			break;
		case "error":
			w.sending.refused(f);
			break;
	}
}

// hello opens a connection: it says the conversation the server has now.
// Another one than the widget holds is loaded, then the socket resumes
// from it; with the same one, what was waiting goes.
function hello(w, f) {
	const c = w.conversation;
	w.outbox.connected();
	if (f.contact) c.contact = f.contact;
	if (!f.conversation) {
		c.reset();
		w.shell.showForm(c.contact);
	} else if (!c.conv || f.conversation.id !== c.conv.id) {
		loadState(w, true);
		return;
	} else {
		c.conv.status = f.conversation.status;
		w.agents.set(f.agents);
	}
	w.pages.flush();
	w.outbox.flush();
	w.reads.markRead();
	c.render();
}

// applyEvent applies ev, the conversation's next event.
function applyEvent(w, ev) {
	const { conversation: c, shell, agents, survey } = w;
	if (!c.conv || ev.conversation_id !== c.conv.id) return;
	if (ev.seq) c.conv.seq = ev.seq;
	const d = ev.data || {};
	switch (ev.type) {
		case "message_added":
			if (d.reopened) c.reopen();
			c.add(d.message, true);
			w.reads.markRead();
			break;
		case "joined":
			if (d.reopened) c.reopen();
			agents.joined(d);
			shell.msgs.system(sysText(ev), ev.seq);
			shell.announce(d.agent_name + " joined the chat.");
			break;
		case "left":
			agents.left(d.agent_id);
			shell.msgs.system(sysText(ev), ev.seq);
			break;
		case "closed":
			c.conv.status = "closed";
			agents.clear();
			shell.msgs.system(sysText(ev), ev.seq);
			if (d.survey_offered !== false) survey.offer(ev.seq);
			shell.announce("The chat has ended. How would you rate it?");
			break;
		case "messages_read":
			w.reads.read(d);
			break;
		case "rated":
			survey.rated(d);
			break;
		case "conversation_deleted":
			c.lost("This conversation was deleted. You can start a new chat.");
			break;
	}
	c.render();
}
