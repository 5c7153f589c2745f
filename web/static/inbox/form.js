// form.js: the forms of the page views (admin, profile): labelled fields,
// their Cancel and submit buttons, the mark on the field an API error
// names, and what went wrong in words.
import { h } from "/static/shared/dom.js";

// field is a labelled input with an optional hint; the input's name is
// the API's field name, so that an APIError's field finds it.
export function field(label, input, hint) {
	return h("label", { class: "field" }, h("span", { class: "field-label", text: label }), input, hint ? h("span", { class: "field-hint", text: hint }) : null);
}

// formButtons is a form's foot: Cancel, which calls onCancel, and the
// submit button.
export function formButtons(onCancel, submit) {
	return h("div", { class: "form-buttons" }, h("button", { type: "button", class: "secondary", text: "Cancel", onclick: onCancel }), submit);
}

// markInvalid marks the form's field of that name invalid and focuses
// it; no name clears the marks.
export function markInvalid(form, name) {
	for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
	const input = name && form.querySelector(`[name="${CSS.escape(name)}"]`);
	if (input) {
		input.setAttribute("aria-invalid", "true");
		input.focus();
	}
}

// problem is what went wrong, for a person: fetch's own TypeError says
// only "Failed to fetch".
export function problem(err) {
	if (err && err.status === 403) return `Not allowed: ${err.message}. Reload the page and try again.`;
	if (err && err.status) return err.message;
	return "The server could not be reached: check the connection and try again.";
}
