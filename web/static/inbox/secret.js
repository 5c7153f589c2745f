// secret.js: a secret shown once, in a box of its page (an API token in
// apitokens.js, a webhook's signing secret in webhooks.js): its value in
// a read-only field with a Copy button, a warning that it will not be
// shown again, and Done, which forgets it. The value is set as a
// property, never as markup.
import { h } from "/static/shared/dom.js";

// showSecret fills box (a .token-reveal) and shows it: title and warning
// above the value, label the field's accessible name, after more nodes
// below it (an example of its use).
export function showSecret(box, { title, warning, value, label, after = [] }) {
	const field = h("input", { class: "token-value", readonly: true, value, "aria-label": label, spellcheck: "false", autocomplete: "off" });
	field.addEventListener("focus", () => field.select());
	const copied = h("span", { class: "copied", role: "status", "aria-live": "polite" });
	const copy = h("button", {
		type: "button",
		class: "secondary",
		text: "Copy",
		onclick: async () => {
			field.select();
			try {
				await navigator.clipboard.writeText(value);
			} catch {
				// No clipboard API here (or no permission): the old way.
				if (!document.execCommand("copy")) {
					copied.textContent = "Press Ctrl+C (⌘C) to copy.";
					return;
				}
			}
			copied.textContent = "Copied.";
		},
	});
	box.replaceChildren(
		h("p", { class: "token-title" }, h("strong", { text: title })),
		h("p", { class: "token-warning", text: warning }),
		h("div", { class: "token-row" }, field, copy),
		copied,
		...after,
		h("div", { class: "form-buttons" }, h("button", { type: "button", class: "secondary", text: "Done", onclick: () => hideSecret(box) })),
	);
	box.hidden = false;
	field.focus();
}

// hideSecret forgets the value: it leaves the page with its elements.
export function hideSecret(box) {
	box.hidden = true;
	box.replaceChildren();
}
