// The chat panel: a non-modal dialog with a header (title, Minimize), a
// notice line for errors and the connection, and a body that shows the
// pre-chat form or the chat. Escape minimizes it.
import { h, icon, ICONS } from "./dom.js";

export function createPanel(title, onMinimize) {
	const msg = h("p", { class: "msg-text" });
	const alert = h(
		"div",
		{ class: "notice error", role: "alert", hidden: true },
		msg,
		h("button", { type: "button", class: "icon-btn dismiss", "aria-label": "Dismiss", title: "Dismiss", onclick: () => setError("") }, icon(ICONS.x)),
	);
	const conn = h("p", { class: "notice conn", role: "status" });
	const body = h("div", { class: "body" });
	const el = h(
		"div",
		{ class: "panel", id: "mc-panel", role: "dialog", "aria-labelledby": "mc-title", hidden: true },
		h(
			"div",
			{ class: "head" },
			h("h2", { class: "title", id: "mc-title", text: title }),
			h("button", { type: "button", class: "icon-btn", "aria-label": "Minimize chat", title: "Minimize chat", onclick: onMinimize }, icon(ICONS.down)),
		),
		conn,
		alert,
		body,
	);
	el.addEventListener("keydown", (e) => {
		if (e.key === "Escape") {
			e.stopPropagation();
			onMinimize();
		}
	});
	let timer = 0;
	function setError(t) {
		msg.textContent = t || "";
		alert.hidden = !t;
	}
	return {
		el,
		body,
		// error shows a message that screen readers read at once; it goes
		// away after ms milliseconds, if given.
		error(t, ms) {
			clearTimeout(timer);
			setError(t);
			if (t && ms) timer = setTimeout(() => setError(""), ms);
		},
		// connection shows how the socket stands: "" or "Reconnecting...".
		connection(text) {
			conn.textContent = text;
		},
	};
}
