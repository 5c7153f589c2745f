// What may be sent, and what becomes of a message the server did not
// take (docs/widget-protocol.md): a text over the server's limits stays in
// the message box, with the reason; one the server rate-limits waits; one
// it could not store is tried again with backoff (RETRIES); one it
// refused, or that the socket keeps closing on (DROPS), is shown as not
// sent, its text back in the message box.
import { randomId, formatSize } from "./dom.js";
import { MAX_FRAME } from "./socket.js";
import { TOO_LONG, frameBytes } from "./outbox.js";
import { seconds, bytes } from "./text.js";

// RETRIES is how often a message the server could not store
// ("unavailable") is sent again, after 1, 2, 4, 8 and 16 s (each with
// jitter), before it is shown as not sent.
const RETRIES = 5;

// DROPS is how many connections may end right after a message was sent,
// before it was stored, until it is shown as not sent: the server may
// close the socket on it without a close code the browser sees (1006).
const DROPS = 3;

// tooLong says why p cannot be sent, or "": its text is over the server's
// limit, maxMessage bytes (0 when the server does not say), counted in
// UTF-8 as the server counts (a CJK character is 3), or its frame is over
// the server's frame limit (MAX_FRAME).
function tooLong(p, maxMessage) {
	let n = bytes(p.text);
	let max = maxMessage;
	if (!max || n <= max) {
		n = frameBytes(p);
		max = MAX_FRAME;
	}
	if (n <= max) return "";
	return TOO_LONG + " (" + formatSize(n) + (max === MAX_FRAME ? " as sent" : "") + "; up to " + formatSize(max) + "). Please shorten it or split it into several messages.";
}

// createSending returns the rules for outbox (outbox.js); errors show in
// panel.
export function createSending(outbox, panel) {
	let maxMessage = 0; // bytes of text; 0 when the server does not say
	return {
		// send takes the message box's text (true), unless it is too
		// long: then it stays in the box (false), with the reason.
		send(text) {
			const p = { client_id: randomId(), text, attachments: [] };
			const why = tooLong(p, maxMessage);
			if (why) panel.error(why);
			else outbox.queue(p);
			return !why;
		},
		// refused takes an error frame, about a message or not.
		refused(f) {
			const p = f.client_id && outbox.find(f.client_id);
			if (f.code === "rate_limited") {
				const s = f.retry_after || 5;
				panel.error("You are sending messages too quickly. Please wait " + seconds(s) + ": we will send yours then.", s * 1000);
				if (p) outbox.hold(p, s * 1000);
			} else if (p && f.code === "unavailable" && (p.tries || 0) < RETRIES) {
				// Backoff with jitter, then give up: never resend forever.
				const ms = 1000 * 2 ** (p.tries || 0) * (0.5 + Math.random() / 2);
				p.tries = (p.tries || 0) + 1;
				outbox.hold(p, ms);
			} else if (p) {
				outbox.notSent(p, f.code === "unavailable" ? "The server could not store it; please try again" : f.error);
			}
		},
		// dropped is the socket's onDropped: the socket closed with code
		// right after frame f was sent. A message of the outbox (true) is
		// not sent again after a 1009 or 1007 (refused) or DROPS such
		// closes.
		dropped(code, f) {
			const p = f && f.type === "message" && outbox.find(f.client_id);
			if (!p) return false;
			p.drops = (p.drops || 0) + 1;
			if (code === 1009 || code === 1007 || p.drops >= DROPS) outbox.notSent(p, code === 1009 ? TOO_LONG : code === 1007 ? "The server could not read it" : "The connection closed each time it was sent; please try again");
			else outbox.persist();
			return true;
		},
		setLimit(n) {
			maxMessage = n;
		},
	};
}
