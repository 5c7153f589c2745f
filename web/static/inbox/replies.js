// replies.js: the agent's replies on their way to the server.
//
// A reply is sent as a `message` frame over the agents' socket
// (docs/protocol.md, "Replies over the socket") with a client id, and
// stays here, shown in the thread as "Sending…", until its `ack` (bus
// "ack") or its refusal (bus "reply-error") comes back, matched by
// client id. Replies written while the socket is down wait here too, kept
// in localStorage (per agent) so that a reload does not lose them, and go
// in the order they were written once the bus says "status" "open": the
// server stores the replies of one connection to one conversation in the
// order of their frames. Sending again is always with the same client id,
// so a reply the server already stored (an ack lost with its socket) is
// answered with the stored message, never stored twice.
//
// Each pending reply: {client_id, conversation_id, text, channel,
// attachment_ids, attachments (for display: {id, name, size,
// content_type}), at (ms), status ("queued" | "sending" | "failed"),
// error, code (the refusal's HTTP status)}.

import { randomId } from "/static/shared/dom.js";

// A refusal with status 503 (the database did not answer in time; the
// reply may be stored, and its client id makes sending it again safe) is
// sent again by itself, twice, AUTO_RETRY_MS apart; any other refusal
// (429 over the agent's reply rate included) waits for the agent's Retry.
const AUTO_RETRIES = 2;
const AUTO_RETRY_MS = 2000;

export function createReplies(ctx) {
	let owner = 0;
	let items = [];
	const listeners = new Set();
	const timers = new Map();

	function storageKey() {
		return "microchat:outbox:" + owner;
	}

	// load reads the pending replies of the agent now logged in, once per
	// agent (a login as someone else reads theirs).
	function load() {
		const me = ctx.me && ctx.me();
		const id = (me && me.id) || 0;
		if (id === owner) return;
		owner = id;
		items = [];
		if (!id) return;
		try {
			const saved = JSON.parse(localStorage.getItem(storageKey()) || "[]");
			if (Array.isArray(saved)) items = saved.filter((r) => r && r.client_id && r.conversation_id);
		} catch {
			items = [];
		}
		// What was "sending" when the page went away may or may not be
		// stored: sending it again with its client id settles it.
		for (const r of items) if (r.status === "sending") r.status = "queued";
	}

	function save() {
		if (!owner) return;
		try {
			if (items.length) localStorage.setItem(storageKey(), JSON.stringify(items));
			else localStorage.removeItem(storageKey());
		} catch {
			// Storage full or refused: the replies still live in this page.
		}
	}

	function changed(r, extra) {
		save();
		for (const fn of listeners) fn(r.conversation_id, r, extra);
	}

	// transmit writes r's frame if the socket is open; r stays queued
	// otherwise, for flush.
	function transmit(r) {
		if (ctx.status() !== "open") {
			r.status = "queued";
			return false;
		}
		const frame = { type: "message", conversation_id: r.conversation_id, client_id: r.client_id, text: r.text, channel: r.channel };
		if (r.attachment_ids && r.attachment_ids.length) frame.attachment_ids = r.attachment_ids;
		if (ctx.send(frame) === false) {
			r.status = "queued";
			return false;
		}
		r.status = "sending";
		return true;
	}

	// flush sends every waiting reply, oldest first; failed ones wait for
	// their Retry.
	function flush() {
		load();
		for (const r of items) {
			if (r.status !== "queued" && r.status !== "sending") continue;
			transmit(r);
			changed(r);
		}
	}

	function find(clientID) {
		return items.find((r) => r.client_id === clientID);
	}

	function remove(r) {
		clearTimeout(timers.get(r.client_id));
		timers.delete(r.client_id);
		items = items.filter((x) => x !== r);
	}

	ctx.bus.on("status", (s) => {
		if (s === "open") {
			flush();
			return;
		}
		load();
		let any = false;
		for (const r of items) {
			if (r.status === "sending") {
				r.status = "queued";
				any = true;
			}
		}
		if (any) {
			save();
			for (const fn of listeners) fn(0);
		}
	});
	ctx.bus.on("hello", () => load());
	ctx.bus.on("ack", (f) => {
		const r = f && find(f.client_id);
		if (!r) return;
		remove(r);
		changed(r, { ack: f });
	});
	ctx.bus.on("reply-error", (f) => {
		const r = f && find(f.client_id);
		if (!r) return;
		r.status = "failed";
		r.error = f.error || "the server refused the reply";
		r.code = f.status || 0;
		const tries = (r.tries || 0) + 1;
		r.tries = tries;
		if (r.code === 429 && f.retry_after) r.error += ` (wait ${f.retry_after} s)`;
		if (r.code === 503 && tries <= AUTO_RETRIES) {
			r.error += "; trying again…";
			timers.set(r.client_id, setTimeout(() => retry(r.client_id), AUTO_RETRY_MS));
		}
		changed(r);
	});

	// send adds a reply and sends it now if it can. channel is "auto",
	// "chat", "email" or "note".
	function send(conversationID, { text, channel, attachments }) {
		load();
		const atts = attachments || [];
		const r = {
			client_id: randomId(),
			conversation_id: conversationID,
			text,
			channel: channel || "auto",
			attachment_ids: atts.map((a) => a.id),
			attachments: atts.map((a) => ({ id: a.id, name: a.name, size: a.size, content_type: a.content_type })),
			at: Date.now(),
			status: "queued",
			error: "",
		};
		items.push(r);
		transmit(r);
		changed(r);
		return r;
	}

	// retry sends a failed reply again, with its client id.
	function retry(clientID) {
		const r = find(clientID);
		if (!r) return;
		clearTimeout(timers.get(clientID));
		timers.delete(clientID);
		r.error = "";
		r.code = 0;
		transmit(r);
		changed(r);
	}

	// discard forgets a reply that will not be sent.
	function discard(clientID) {
		const r = find(clientID);
		if (!r) return;
		remove(r);
		changed(r, { discarded: true });
	}

	load();
	return {
		send,
		retry,
		discard,
		// pending returns the replies of a conversation not answered yet,
		// oldest first.
		pending(conversationID) {
			load();
			return items.filter((r) => r.conversation_id === conversationID);
		},
		// onChange(fn) calls fn(conversationID, reply, {ack?, discarded?})
		// on every change (conversationID 0: several); returns off().
		onChange(fn) {
			listeners.add(fn);
			return () => listeners.delete(fn);
		},
		flush,
	};
}
