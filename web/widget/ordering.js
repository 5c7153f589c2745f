// Per-conversation order of events (docs/protocol.md, "Events"), shared by
// the widget (its one conversation) and the dashboard (every conversation
// it holds), which gets this file unchanged at /static/shared/ordering.js.
//
// Each conversation's events carry seq, 1, 2, 3... without gaps. For each
// conversation the ordering keeps the seq the client holds (the cursor):
// an event at or below it is a duplicate and dropped; the next one is
// delivered, with any held after it; one further on waits for those
// missing, and after GAP_MS without them onGap(id) says the conversation
// must be loaded again. While a conversation is being loaded again
// (resync), its events wait; reset(id, seq) with the seq of what was
// loaded delivers those after it. Events without a seq (typing, presence)
// pass at once.
//
// The widget's stream is the exception: the server leaves out the agents'
// private notes, so its seq numbers skip (docs/widget-protocol.md, "Gaps
// in seq"), while one connection still sends them in order. With
// {gaps: true} an event above the cursor is delivered at once and moves
// the cursor to it: only duplicates are dropped, nothing waits.

const GAP_MS = 3000;

// createOrdering returns the ordering. onGap(id) is called when events of
// conversation id are missing for GAP_MS, or a resync waited that long
// for its reset; the conversation is then in resync until reset(id, seq).
// opts.gaps: seq numbers may skip (the widget), see above.
export function createOrdering(onGap, opts) {
	const gaps = !!(opts && opts.gaps);
	const seqs = new Map(); // conversation id -> seq held
	const held = new Map(); // conversation id -> Map seq -> event
	const waiting = new Set(); // conversations in resync
	const timers = new Map(); // conversation id -> gap timer

	// arm starts the gap timer of id, unless it runs.
	function arm(id) {
		if (timers.has(id)) return;
		const t = setTimeout(() => {
			timers.delete(id);
			waiting.add(id);
			if (onGap) onGap(id);
		}, GAP_MS);
		timers.set(id, t);
	}

	function disarm(id) {
		clearTimeout(timers.get(id));
		timers.delete(id);
	}

	// release returns the held events of id that follow its cursor, in
	// order, drops those at or below it, and arms the gap timer if some
	// are left waiting.
	function release(id) {
		const out = [];
		const h = held.get(id);
		if (!h || waiting.has(id)) return out;
		let seq = seqs.get(id);
		for (const s of [...h.keys()].sort((a, b) => a - b)) {
			if (s > seq + 1) break;
			if (s === seq + 1) out.push(h.get(s));
			h.delete(s);
			seq = Math.max(seq, s);
		}
		seqs.set(id, seq);
		if (h.size) arm(id);
		else {
			held.delete(id);
			disarm(id);
		}
		return out;
	}

	return {
		// take returns the events to deliver now, in order, for ev just
		// received: none (a duplicate, or held), ev, or ev and those held
		// after it.
		take(ev) {
			const id = ev.conversation_id;
			if (!ev.seq || !id) return [ev];
			const seq = seqs.get(id);
			if (seq !== undefined && ev.seq <= seq) return [];
			if (!held.has(id)) held.set(id, new Map());
			held.get(id).set(ev.seq, ev);
			if (seq === undefined && !waiting.has(id)) seqs.set(id, ev.seq - 1);
			else if (gaps && !waiting.has(id)) seqs.set(id, ev.seq - 1);
			if (waiting.has(id)) arm(id);
			return release(id);
		},
		// reset says the client holds conversation id up to seq (what it
		// loaded), ends its resync and returns the held events after it.
		reset(id, seq) {
			waiting.delete(id);
			disarm(id);
			seqs.set(id, Math.max(seq, 0));
			return release(id);
		},
		// known is the seq held of conversation id, or undefined.
		known: (id) => seqs.get(id),
		// resync holds the events of conversation id until reset.
		resync(id) {
			waiting.add(id);
			disarm(id);
		},
		// waiting reports whether conversation id is in resync.
		waiting: (id) => waiting.has(id),
		// clear forgets every conversation (a resync of everything).
		clear() {
			for (const id of timers.keys()) clearTimeout(timers.get(id));
			for (const m of [seqs, held, waiting, timers]) m.clear();
		},
		// forget drops all that is known of conversation id (deleted).
		forget(id) {
			seqs.delete(id);
			held.delete(id);
			waiting.delete(id);
			disarm(id);
		},
		// cursors is {id: seq} of every conversation held, for a resume.
		cursors() {
			const c = {};
			for (const [id, seq] of seqs) if (!waiting.has(id)) c[id] = seq;
			return c;
		},
	};
}
