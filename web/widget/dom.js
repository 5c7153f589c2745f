// Building DOM nodes. Text from users only ever becomes text nodes or
// textContent: h() appends strings as text, and linkify() makes <a>
// elements itself, for http and https addresses only.

// h creates an element. props: "class", "text" (textContent), "on..."
// (event listeners) and attributes (true is an empty attribute; null and
// false are left out). Children are nodes or strings (text nodes).
export function h(tag, props, ...kids) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(props || {})) {
		if (v == null || v === false) continue;
		if (k === "class") el.className = v;
		else if (k === "text") el.textContent = v;
		else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
		else el.setAttribute(k, v === true ? "" : v);
	}
	for (const c of kids.flat(Infinity)) if (c != null && c !== false) el.append(c);
	return el;
}

const SVG = "http://www.w3.org/2000/svg";

// Line icons (Feather, MIT), drawn with the text color.
export const ICONS = {
	chat: "M21 11.5a8.4 8.4 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.4 8.4 0 0 1-3.8-.9L3 21l1.9-5.7a8.4 8.4 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.4 8.4 0 0 1 3.8-.9h.5a8.5 8.5 0 0 1 8 8v.5z",
	down: "M6 9l6 6 6-6",
	x: "M18 6L6 18M6 6l12 12",
	clip: "M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5",
	send: "M22 2L11 13M22 2l-7 20-4-9-9-4 20-7z",
	file: "M13 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9zM13 2v7h7",
};

// icon returns a decorative SVG icon: hidden from assistive technology,
// whose name comes from the button's label.
export function icon(d) {
	const s = document.createElementNS(SVG, "svg");
	s.setAttribute("viewBox", "0 0 24 24");
	s.setAttribute("aria-hidden", "true");
	s.setAttribute("focusable", "false");
	const p = document.createElementNS(SVG, "path");
	p.setAttribute("d", d);
	s.append(p);
	return s;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

// linkify returns the text as text nodes and links: only http and https
// addresses become links, opened in a new tab without access to this page.
export function linkify(text) {
	const out = [];
	let last = 0;
	for (const m of text.matchAll(URL_RE)) {
		let url = m[0].replace(/[.,;:!?)\]}]+$/, "");
		let safe = null;
		try {
			const u = new URL(url);
			if (u.protocol === "http:" || u.protocol === "https:") safe = u.href;
		} catch {}
		if (!safe) continue;
		out.push(text.slice(last, m.index), h("a", { href: safe, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
		last = m.index + url.length;
	}
	out.push(text.slice(last));
	return out.filter((s) => s !== "");
}

// formatSize says how large a file is, for people.
export function formatSize(n) {
	if (n < 1024) return n + " B";
	if (n < 1024 * 1024) return Math.round(n / 1024) + " KB";
	return (n / 1024 / 1024).toFixed(1).replace(/\.0$/, "") + " MB";
}

// clockTime formats a timestamp as the hour and minute.
export function clockTime(iso) {
	const d = iso ? new Date(iso) : new Date();
	return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// randomId returns a client id for a message: 16 random bytes in hex, from
// crypto.getRandomValues, which, unlike randomUUID, works on http pages.
export function randomId() {
	const b = crypto.getRandomValues(new Uint8Array(16));
	return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
