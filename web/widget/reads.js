// Read receipts, both ways: how far the agents have read the visitor's
// messages ("Seen" under them), and how far the visitor has read the
// agents': told to the server (a read frame) when the panel is open on the
// chat on a visible page, the rest counted as unread on the launcher.

// createReads returns the receipts. send(frame) writes a frame on the
// socket, false when it is not open; reading() says whether the panel is
// open on the chat; onChange is called after each markRead.
export function createReads(send, reading, onChange) {
	const agentSeqs = new Set(); // seqs of the agents' messages
	let seen = 0; // the agents read the visitor's messages up to this seq
	let readUpTo = 0; // the visitor read the agents' messages up to this seq

	// markRead tells the server the visitor has seen the agents' messages,
	// when they can.
	function markRead() {
		if (!reading() || document.visibilityState !== "visible") return;
		const top = Math.max(0, ...agentSeqs);
		if (top > readUpTo && send({ type: "read", up_to: top })) readUpTo = top;
		onChange();
	}
	document.addEventListener("visibilitychange", markRead);

	return {
		markRead,
		// added takes a message shown, m.
		added(m) {
			if (m.author === "agent") agentSeqs.add(m.seq);
		},
		// history takes the state of a message of the history, m.
		history(m) {
			if (m.state === "read" && m.author === "contact") seen = Math.max(seen, m.seq);
			if (m.state === "read" && m.author === "agent") readUpTo = Math.max(readUpTo, m.seq);
		},
		// read takes a messages_read event's data, d.
		read(d) {
			if (d.reader === "agent") seen = Math.max(seen, d.up_to);
			else readUpTo = Math.max(readUpTo, d.up_to);
		},
		seen: () => seen,
		unread: () => [...agentSeqs].filter((s) => s > readUpTo).length,
		reset() {
			agentSeqs.clear();
			seen = readUpTo = 0;
		},
	};
}
