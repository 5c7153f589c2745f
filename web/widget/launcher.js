// The "Live Chat" launcher in the page's bottom corner. Its accessible
// name is "Live Chat" while the panel is closed, and the unread count is
// its description; while the panel is open it is a round "Close chat"
// button with an X, as the header already names the chat.
import { h, icon, ICONS } from "./dom.js";

export function createLauncher(onClick) {
	const badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
	const unread = h("span", { class: "sr", id: "mc-unread" });
	const chat = icon(ICONS.chat);
	const x = icon(ICONS.x);
	chat.setAttribute("class", "i-chat");
	x.setAttribute("class", "i-x");
	const label = h("span", { class: "label", text: "Live Chat" });
	const button = h(
		"button",
		{ type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "mc-panel", "aria-describedby": "mc-unread", onclick: onClick },
		chat,
		x,
		label,
		badge,
	);
	function setOpen(open) {
		button.setAttribute("aria-expanded", String(open));
		button.classList.toggle("x", open);
		for (const a of ["aria-label", "title"]) {
			if (open) button.setAttribute(a, "Close chat");
			else button.removeAttribute(a);
		}
	}
	setOpen(false);
	return {
		el: h("div", { class: "launcher-wrap" }, button, unread),
		button,
		setOpen,
		setUnread(n) {
			badge.hidden = n === 0;
			badge.textContent = n === 0 ? "" : n > 9 ? "9+" : String(n);
			unread.textContent = n === 0 ? "" : n === 1 ? "1 unread message" : n + " unread messages";
		},
	};
}
