// dialog.js: a modal confirmation for what cannot be undone (erase a
// contact, disable an agent, delete a saved reply), as a <dialog> so that
// focus stays inside it and Escape cancels.
import { h } from "/static/shared/dom.js";

// confirmDialog shows a question and calls action when the person
// confirms; an error that action throws is shown in the dialog, which
// stays open. It resolves true once action succeeded, false on cancel.
// All text is set as text.
export function confirmDialog({ title, text, confirm, danger = true, action }) {
	return new Promise((resolve) => {
		const id = "confirm-" + Math.random().toString(36).slice(2);
		const dialog = h("dialog", { class: "confirm", "aria-labelledby": id });
		const cancel = h("button", { type: "button", class: "secondary", text: "Cancel" });
		const ok = h("button", { type: "button", class: danger ? "danger" : "", text: confirm });
		const error = h("p", { class: "error", role: "alert" });
		let done = false;
		cancel.addEventListener("click", () => dialog.close());
		dialog.addEventListener("close", () => {
			dialog.remove();
			resolve(done);
		});
		ok.addEventListener("click", async () => {
			ok.disabled = true;
			error.textContent = "";
			try {
				await action();
				done = true;
				dialog.close();
			} catch (err) {
				ok.disabled = false;
				error.textContent = err.message;
			}
		});
		dialog.append(h("h3", { id, text: title }), h("p", { text }), error, h("div", { class: "dialog-buttons" }, cancel, ok));
		document.body.append(dialog);
		dialog.showModal();
		cancel.focus();
	});
}
