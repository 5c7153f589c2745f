// What the widget keeps on the host page, under keys that start with
// "microchat:<server origin>", so that two Microchat servers on one site
// do not mix. In localStorage, shared by every tab and page of the site
// (rule 10): the visitor token, the messages not yet stored by the server,
// and the pages viewed before Start Chat. In sessionStorage, per tab:
// whether the panel is open, and the draft being typed. When storage is
// refused (some private modes), it lives in memory for this page only.
let prefix = "microchat:";
const memory = new Map();

// initStore sets the server origin of the keys.
export function initStore(origin) {
	prefix = "microchat:" + origin;
}

function area(session) {
	return session ? window.sessionStorage : window.localStorage;
}

function read(key, session) {
	try {
		return area(session).getItem(key);
	} catch {
		return memory.has(key) ? memory.get(key) : null;
	}
}

function write(key, value, session) {
	try {
		if (value == null) area(session).removeItem(key);
		else area(session).setItem(key, value);
	} catch {
		memory.set(key, value);
	}
}

// getToken returns the visitor token, or null; its key is the one
// docs/widget-protocol.md names.
export function getToken() {
	return read(prefix, false);
}

// setToken keeps the visitor token; null forgets it.
export function setToken(token) {
	write(prefix, token, false);
}

// load returns the JSON value kept under name, or fallback.
export function load(name, fallback, session) {
	try {
		const v = JSON.parse(read(prefix + ":" + name, session));
		return v == null ? fallback : v;
	} catch {
		return fallback;
	}
}

// save keeps a JSON value under name; null removes it.
export function save(name, value, session) {
	write(prefix + ":" + name, value == null ? null : JSON.stringify(value), session);
}
