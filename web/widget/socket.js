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
// frame resent on each connection cannot make a loop of sockets. It pings
// every 25 s, and treats a socket it has heard nothing from for 70 s as
// dead. It hands every frame to onFrame (pong too), and says how it stands
// with onStatus: "connecting" (first try), "open" (after hello) or
// "reconnecting".

const PING_MS = 25000;
const DEAD_MS = 70000;

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
	let heard = 0;
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
		heard = Date.now();
		if (attempt === 0) onStatus("connecting");
		s.onopen = () => auth && s.send(JSON.stringify(auth()));
		s.onmessage = (e) => {
			heard = Date.now();
			let f;
			try {
				f = JSON.parse(e.data);
			} catch {
				return;
			}
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
		pinger = setInterval(() => {
			if (Date.now() - heard > DEAD_MS) {
				s.onclose = null;
				s.close();
				dropped(s, 0);
			} else if (ready) send({ type: "ping" });
		}, PING_MS);
	}

	function dropped(s, code) {
		if (ws !== s) return;
		ws = null;
		ready = false;
		clearInterval(pinger);
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
