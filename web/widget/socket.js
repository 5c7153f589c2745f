// A WebSocket that stays connected, shared by the widget (its one socket,
// docs/widget-protocol.md) and the dashboard (the agents' socket,
// docs/protocol.md), which gets this file unchanged at
// /static/shared/socket.js. It authenticates with its first frame (the
// widget) or by the page's cookie (the dashboard: no auth frame), waits
// for the server's hello, reconnects after any drop with exponential backoff
// (0.5 s doubling to 30 s) and full jitter, and after close 4429 (too many
// connections) waits 30 to 60 s before any new try; after a close 1007 or
// 1009 (a frame the server refused), or one onDropped blames on the last
// frame sent, the backoff goes on growing past the next hello, so that a
// frame resent on each connection cannot make a loop of sockets. It hands
// every frame to onFrame (pong too), and says how it stands with
// onStatus: "connecting" (first try), "open" (after hello) or
// "reconnecting".
//
// A server that stops answering (a hung process, a host gone without
// closing its connections: a proxy keeps the browser's side open) is
// found by its silence, never by the browser, which may wait for hours:
// the socket pings every SOCKET_TIMES.ping (25 s) and expects, after each
// ping, a frame (its pong or any other) within SOCKET_TIMES.pong (10 s);
// the hello within SOCKET_TIMES.hello (20 s) of opening; and each message
// frame's ack or error (by client id) within SOCKET_TIMES.ack (20 s). A
// wait that ends with nothing makes the socket dead: it is closed and
// replaced (onDropped's code 0), with the backoff above. So a silent
// server is found within 35 s, or 20 s after a message sent to it. The
// ack's wait is over the server's own 10 s for storing a message, so that
// a slow database is not taken for a dead link; no extra ping goes with a
// message, since the widget's server answers a ping only after the
// message before it.
//
// A page may change the times (ms) before this script runs, with
// window.__microchatSocketTimes = {ping, pong, hello, ack}: the tests do,
// to find a dead link in a second.
const SOCKET_TIMES = Object.assign({ ping: 25000, pong: 10000, hello: 20000, ack: 20000 }, globalThis.__microchatSocketTimes);

// MAX_FRAME is the largest frame the server reads, in bytes of UTF-8 JSON:
// it closes the socket with 1009 on a larger one (docs/widget-protocol.md,
// close codes).
export const MAX_FRAME = 65536;

// createSocket returns a socket to url (ws: or wss:). auth(), if given,
// returns the frame sent first on each connection; without it the
// connection is authenticated by its cookie. onUnauthorized is called on
// close code 4401 (bad or expired token or session), after which the
// socket stays closed until connect(); onDropped(code, frame), if given,
// on any other drop but close(), with the close code (1006 with no close
// frame, 0 for a dead socket) and the last frame sent on that socket (or
// null): it returns true if that frame may be what the server closed the
// socket on.
export function createSocket(url, { auth, onFrame, onStatus, onUnauthorized, onDropped }) {
	let ws = null;
	let ready = false;
	let wanted = false;
	let attempt = 0;
	let retry = 0;
	let pinger = 0;
	let deadline = 0; // the timer of the first of waits
	let waits = new Map(); // what ws waits for ("hello", "ping", a client id) -> by when
	let blockedUntil = 0; // after 4429: no socket before then
	let refused = false; // the last close was on a frame sent
	let last = null; // the last frame sent on ws

	function connect() {
		wanted = true;
		clearTimeout(retry);
		if (ws) return;
		const wait = blockedUntil - Date.now();
		if (wait > 0) {
			retry = setTimeout(connect, wait);
			return;
		}
		const s = new WebSocket(url);
		ws = s;
		last = null;
		waits.clear();
		expect("hello", SOCKET_TIMES.hello);
		if (attempt === 0) onStatus("connecting");
		s.onopen = () => auth && s.send(JSON.stringify(auth()));
		s.onmessage = (e) => {
			let f;
			try {
				f = JSON.parse(e.data);
			} catch {
				return;
			}
			// Any frame shows the server is there (a pong may come behind
			// others); a message is answered by its ack or error.
			answered("hello", "ping", (f.type === "ack" || f.type === "error") && f.client_id);
			if (f.type === "hello") {
				ready = true;
				if (!refused) attempt = 0;
				refused = false;
				onStatus("open");
			}
			onFrame(f);
		};
		s.onclose = (e) => dropped(s, e.code);
		clearInterval(pinger);
		pinger = setInterval(() => send({ type: "ping" }), SOCKET_TIMES.ping);
	}

	// expect says ws waits for key's answer within ms (not later than an
	// earlier wait for it said).
	function expect(key, ms) {
		if (!waits.has(key)) waits.set(key, Date.now() + ms);
		arm();
	}

	function answered(...keys) {
		const n = waits.size;
		for (const k of keys) waits.delete(k);
		if (waits.size !== n) arm();
	}

	// arm sets the timer of the first wait to end: then ws is dead.
	function arm() {
		clearTimeout(deadline);
		if (!waits.size) return;
		const s = ws;
		deadline = setTimeout(() => {
			s.onclose = null;
			s.close();
			dropped(s, 0);
		}, Math.min(...waits.values()) - Date.now());
	}

	function dropped(s, code) {
		if (ws !== s) return;
		ws = null;
		ready = false;
		clearInterval(pinger);
		clearTimeout(deadline);
		waits.clear();
		if (code === 4401) {
			wanted = false;
			onUnauthorized();
			return;
		}
		if (!wanted) return;
		refused = (onDropped && onDropped(code, last)) || code === 1007 || code === 1009;
		onStatus("reconnecting");
		const cap = Math.min(30000, 500 * 2 ** attempt);
		attempt = Math.min(attempt + 1, 10);
		if (code === 4429) blockedUntil = Date.now() + 30000 + Math.random() * 30000;
		retry = setTimeout(connect, Math.max(Math.random() * cap, blockedUntil - Date.now()));
	}

	// send writes a frame if the socket is authenticated; false if not.
	function send(frame) {
		if (!ready) return false;
		ws.send(JSON.stringify(frame));
		last = frame;
		if (frame.type === "ping") expect("ping", SOCKET_TIMES.pong);
		else if (frame.type === "message") expect(frame.client_id, SOCKET_TIMES.ack);
		return true;
	}

	// close closes the socket for good (until connect).
	function close() {
		wanted = false;
		clearTimeout(retry);
		if (ws) {
			const s = ws;
			dropped(s, 1000);
			s.close(1000);
		}
	}

	// Back online: try at once rather than at the end of the backoff,
	// and give up a try under way, made while offline.
	window.addEventListener("online", () => {
		if (!wanted || ready) return;
		if (ws) {
			const s = ws;
			s.onclose = null;
			s.close();
			ws = null;
		}
		connect();
	});

	return { connect, send, close, ready: () => ready };
}
