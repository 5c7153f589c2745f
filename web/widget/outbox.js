// The messages the visitor sent that the server has not acknowledged: the
// outbox, kept per tab (store.js) so that a reload loses none. Each is
// sent once per connection, and again with the same client id after any
// reconnect or reload: the server stores each client id once. Those held
// back (rate limit, backoff: sending.js) go when their time comes, after
// a reload too.
import { load, save } from "./store.js";
import { MAX_FRAME } from "./socket.js";
import { sentence, bytes } from "./text.js";

// TOO_LONG is why a message whose frame the server would refuse (close
// 1009) is not sent.
export const TOO_LONG = "Your message is too long to send";

// messageFrame is the socket frame that sends p.
function messageFrame(p) {
	return { type: "message", client_id: p.client_id, text: p.text, attachment_ids: p.attachments.map((a) => a.id) };
}

// frameBytes is the size of p's frame as sent: JSON escapes each control
// character as 6 bytes, so a short text can make a frame over MAX_FRAME.
export function frameBytes(p) {
	return bytes(JSON.stringify(messageFrame(p)));
}

// createOutbox returns the outbox of messages p, {client_id, text,
// attachments, hold?, tries?, drops?}. send(frame) writes a frame on the
// socket, false when it is not open; the messages show in msgs, and the
// text of one not sent goes back to composer.
export function createOutbox(send, { msgs, composer }) {
	let outbox = load("outbox", [], true);
	let sentOnConn = new Set(); // client ids sent on this connection
	let flushTimer = 0;

	function persist() {
		save("outbox", outbox.length ? outbox : null, true);
	}

	function drop(id) {
		const n = outbox.length;
		outbox = outbox.filter((p) => p.client_id !== id);
		if (outbox.length !== n) persist();
	}

	// notSent shows a message the server refused or could not store, and
	// gives its text back to the message box: a draft is never lost.
	function notSent(p, reason) {
		drop(p.client_id);
		msgs.addPending(p, "Not sent: " + sentence(reason));
		if (p.text) composer.restore(p.text);
	}

	// flush sends what has not been sent on this connection and is not
	// held back. One whose frame the server would refuse (kept by an older
	// widget) is shown as not sent instead.
	function flush() {
		clearTimeout(flushTimer);
		const held = outbox.filter((p) => p.hold > Date.now()).map((p) => p.hold);
		if (held.length) flushTimer = setTimeout(flush, Math.min(...held) - Date.now() + 50);
		for (const p of outbox) {
			if (sentOnConn.has(p.client_id) || p.hold > Date.now()) continue;
			if (frameBytes(p) > MAX_FRAME) {
				notSent(p, TOO_LONG);
				continue;
			}
			if (!send(messageFrame(p))) return;
			sentOnConn.add(p.client_id);
			msgs.addPending(p);
		}
	}

	return {
		flush,
		drop,
		notSent,
		persist,
		find: (id) => outbox.find((p) => p.client_id === id),
		queue(p) {
			outbox.push(p);
			persist();
			msgs.addPending(p);
			flush();
		},
		// hold sends p again in ms milliseconds, not before, even on this
		// connection.
		hold(p, ms) {
			p.hold = Date.now() + ms;
			persist();
			sentOnConn.delete(p.client_id);
			msgs.addPending(p, "Waiting to send...");
			flush();
		},
		// dropAll forgets the messages not sent, with no conversation to
		// send them to, and gives their text back to the message box.
		dropAll() {
			for (const p of outbox.slice().reverse()) if (p.text) composer.restore(p.text);
			outbox = [];
			persist();
		},
		// connected says a new connection is open: all go again.
		connected() {
			sentOnConn = new Set();
		},
		// showPending shows the messages not sent, after the conversation.
		showPending() {
			for (const p of outbox) msgs.addPending(p, p.hold > Date.now() ? "Waiting to send..." : "");
		},
	};
}
