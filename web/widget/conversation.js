// The visitor's conversation as the server last told it: loaded with GET
// /state (state.js), then moved on by the socket's events (events.js).
// It puts the messages in the list and renders what follows from the
// rest: the status line, who is typing, the receipts and the launcher's
// unread count.
import { messageEvent } from "./microchat.js";

// createConversation returns the conversation, none yet, over the
// widget's parts (app.js).
export function createConversation({ shell, agents, reads, survey, outbox, listeners }) {
	const { msgs, status, launcher } = shell;
	const c = {
		conv: null, // {id, status, seq}; null before Start Chat
		contact: null, // the visitor as the server knows them, for the form
		// resume says where the socket resumes: the auth frame's fields.
		resume: () => ({ last_seq: c.conv ? c.conv.seq : 0, conversation_id: c.conv ? c.conv.id : 0 }),
		// reset forgets the conversation, not the contact.
		reset() {
			c.conv = null;
			agents.clear();
			reads.reset();
			survey.reset();
			msgs.clear();
		},
		render() {
			const a = agents.shown();
			let mode = "none";
			if (c.conv && c.conv.status === "closed") mode = "ended";
			else if (a) mode = "agent";
			else if (c.conv) mode = "waiting";
			status.render({ mode, agent: a });
			msgs.typing(agents.typingNames());
			msgs.receipts(reads.seen());
			launcher.setUnread(shell.isOpen() ? 0 : reads.unread());
		},
		// add shows message m, the server's; live, as it arrives, an
		// agent's is announced and the page's listeners get it.
		add(m, live) {
			reads.added(m);
			if (m.client_id) outbox.drop(m.client_id);
			// An agent's message on the socket carries their current name
			// (agent_name), also of one who wrote without joining.
			if (m.agent_id && m.agent_name) agents.authors([{ id: m.agent_id, name: m.agent_name }]);
			const name = agents.nameOf(m.agent_id);
			msgs.add(m, name);
			if (live && m.author === "agent") {
				agents.wrote(m.agent_id);
				shell.announce(name + ": " + (m.text || "sent a file"));
				listeners.emit("message", messageEvent(m, name));
			}
		},
		// reopen says a message or an agent reopened the conversation.
		reopen() {
			c.conv.status = "open";
			survey.reopened();
		},
		// lost shows the pre-chat form again, with why: the conversation
		// is gone, and the messages not sent with it (their text goes back
		// to the message box).
		lost(why) {
			c.reset();
			outbox.dropAll();
			shell.showForm(c.contact);
			shell.panel.error(why);
		},
	};
	return c;
}
