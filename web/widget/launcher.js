// The "Live Chat" launcher in the page's bottom corner. Its accessible
// name stays "Live Chat"; the unread count is its description.
import { h, icon, ICONS } from "./dom.js";

export function createLauncher(onClick) {
	const badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
	const unread = h("span", { class: "sr", id: "mc-unread" });
	const button = h(
		"button",
		{ type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "mc-panel", "aria-describedby": "mc-unread", onclick: onClick },
		icon(ICONS.chat),
		h("span", { text: "Live Chat" }),
		badge,
	);
	return {
		el: h("div", { class: "launcher-wrap" }, button, unread),
		button,
		setOpen(open) {
			button.setAttribute("aria-expanded", String(open));
		},
		setUnread(n) {
			badge.hidden = n === 0;
			badge.textContent = n === 0 ? "" : n > 9 ? "9+" : String(n);
			unread.textContent = n === 0 ? "" : n === 1 ? "1 unread message" : n + " unread messages";
		},
	};
}
