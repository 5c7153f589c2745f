// The satisfaction survey offered when the chat ends: a score from 1 to 5
// (radio buttons drawn as stars) and an optional comment.
import { h } from "./dom.js";

export function createRating(onSubmit) {
	const stars = [];
	const radios = [1, 2, 3, 4, 5].map((n) => {
		const input = h("input", { type: "radio", name: "mc-score", value: String(n), id: "mc-score-" + n, class: "sr" });
		const label = h("label", { for: "mc-score-" + n, class: "star", title: n + (n === 1 ? " star" : " stars") }, h("span", { "aria-hidden": "true", text: "\u2605" }), h("span", { class: "sr", text: n + (n === 1 ? " star" : " stars") }));
		input.addEventListener("change", paint);
		stars.push(label);
		return [input, label];
	});
	const comment = h("textarea", { id: "mc-comment", rows: "2", maxlength: "2000", dir: "auto" });
	const err = h("p", { class: "field-err", id: "mc-rating-err" });
	const button = h("button", { type: "submit", class: "primary" }, "Send rating");
	const form = h(
		"form",
		{ class: "rating", "aria-labelledby": "mc-rating-q" },
		h("p", { class: "q", id: "mc-rating-q", text: "How would you rate this chat?" }),
		h("fieldset", { class: "stars", "aria-describedby": "mc-rating-err" }, h("legend", { class: "sr", text: "Your rating, from 1 to 5 stars" }), radios),
		err,
		h("label", { for: "mc-comment", text: "Comment (optional)" }),
		comment,
		button,
	);
	function score() {
		const c = form.querySelector("input[name=mc-score]:checked");
		return c ? +c.value : 0;
	}
	function paint() {
		const s = score();
		stars.forEach((l, i) => l.classList.toggle("on", i < s));
		err.textContent = "";
	}
	form.addEventListener("submit", (e) => {
		e.preventDefault();
		if (!score()) {
			err.textContent = "Please choose a rating from 1 to 5 stars.";
			// The radios are drawn as stars and hidden: focusing one must not
			// scroll the panel (it would carry the header away).
			form.querySelector("input[name=mc-score]").focus({ preventScroll: true });
			stars[0].scrollIntoView({ block: "nearest" });
			return;
		}
		onSubmit(score(), comment.value.trim());
	});
	return {
		el: form,
		busy(b) {
			button.disabled = b;
		},
		error(text) {
			err.textContent = text;
		},
		// done replaces the form with the thanks.
		done(s) {
			form.replaceChildren(h("p", { class: "q", role: "status", text: "Thank you for your feedback!" }), h("p", { class: "stars done", role: "img", "aria-label": "You rated this chat " + s + " out of 5" }, "\u2605".repeat(s) + "\u2606".repeat(5 - s)));
		},
	};
}
