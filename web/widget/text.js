// How the widget words a wait and the server's error texts, and how the
// server counts a text's length.

// seconds says s seconds, at least 1, and 5 when s is not given.
export function seconds(s) {
	s = Math.max(1, Math.ceil(s || 5));
	return s + (s === 1 ? " second" : " seconds");
}

// wait says how long to wait after a 429 (s: its Retry-After, in seconds).
export function wait(s) {
	return "Too many attempts. Please wait " + seconds(s) + " and try again.";
}

// sentence ends a message with a full stop. Server texts are shown as
// they are, never recased: they may start with a field name or a MIME
// type ("application/x-elf: programs are not accepted").
export function sentence(s) {
	s = String(s || "").trim();
	return s + (/[.!?]$/.test(s) ? "" : ".");
}

// bytes is the length of s in UTF-8, as the server counts.
export function bytes(s) {
	return new TextEncoder().encode(s).length;
}
