// The pre-chat form of the customer guide: Name (required), Email and
// Phone (optional, validated as the server does), the note on follow-ups,
// and Start Chat. No login.
import { h } from "./dom.js";

const FIELDS = [
	["name", "Name", "text", "name"],
	["email", "Email", "email", "email"],
	["phone", "Phone", "tel", "tel"],
];

// check returns the errors of the form's values, by field.
export function checkForm(v) {
	const e = {};
	if (!v.name) e.name = "Please enter your name.";
	if (v.email && !/^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/.test(v.email)) e.email = "Please enter a valid email address, like name@example.com.";
	if (v.phone && !(/^[0-9 +()-]{5,20}$/.test(v.phone) && /[0-9]/.test(v.phone))) e.phone = "Please enter a valid phone number: 5 to 20 digits, spaces and + - ( ).";
	return e;
}

export function createPrechat(onSubmit) {
	const inputs = {};
	const errors = {};
	const rows = FIELDS.map(([key, label, type, auto]) => {
		const required = key === "name";
		inputs[key] = h("input", { id: "mc-" + key, name: key, type, autocomplete: auto, maxlength: "200", required, dir: key === "name" ? "auto" : null, "aria-describedby": "mc-" + key + "-err" + (required ? "" : " mc-note") });
		errors[key] = h("p", { class: "field-err", id: "mc-" + key + "-err" });
		inputs[key].addEventListener("input", () => setError(key, ""));
		return h(
			"div",
			{ class: "field" },
			h("label", { for: "mc-" + key }, label, h("span", { class: "hint", "aria-hidden": "true", text: required ? " *" : " (optional)" })),
			inputs[key],
			errors[key],
		);
	});
	const button = h("button", { type: "submit", class: "primary" }, "Start Chat");
	const form = h(
		"form",
		{ class: "prechat", novalidate: true },
		h("p", { class: "intro", text: "Hi there! Tell us who you are and we will connect you with our support team." }),
		rows,
		h("p", { class: "note", id: "mc-note", text: "Providing an email or phone number is recommended: it lets our team follow up if no agent is available at the moment or you get disconnected." }),
		button,
	);
	function setError(key, text) {
		errors[key].textContent = text;
		if (text) inputs[key].setAttribute("aria-invalid", "true");
		else inputs[key].removeAttribute("aria-invalid");
	}
	function values() {
		const v = {};
		for (const [key] of FIELDS) v[key] = inputs[key].value.trim();
		return v;
	}
	form.addEventListener("submit", (e) => {
		e.preventDefault();
		const v = values();
		const errs = checkForm(v);
		for (const [key] of FIELDS) setError(key, errs[key] || "");
		const first = FIELDS.find(([key]) => errs[key]);
		if (first) inputs[first[0]].focus();
		else onSubmit(v);
	});
	return {
		el: form,
		// fill sets the fields that are given and still empty (or all, with force).
		fill(v, force) {
			for (const [key] of FIELDS) if (v[key] && (force || !inputs[key].value)) inputs[key].value = v[key];
		},
		setError(key, text) {
			const k = inputs[key] ? key : "name";
			setError(k, text);
			inputs[k].focus();
		},
		busy(b) {
			button.disabled = b;
			button.textContent = b ? "Starting..." : "Start Chat";
		},
		focus() {
			(FIELDS.map(([k]) => inputs[k]).find((i) => !i.value) || button).focus();
		},
	};
}
