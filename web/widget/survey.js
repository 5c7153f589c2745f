// The rating flow: the survey (rating.js) offered in the conversation
// when the chat ends, sent with POST /rating, and the thanks with the
// score once the visitor has rated it, here or in another tab. A
// conversation reopened before it was rated takes the survey away.
import { createRating } from "./rating.js";
import { wait, sentence } from "./text.js";

// createSurvey returns the flow; the survey goes into msgs.
export function createSurvey(api, msgs) {
	let rated = null; // {score, comment}: what the visitor rated
	let rating = null; // {view, li}: the survey in the list
	return {
		// restore takes the rating the server has, or null.
		restore(r) {
			rated = r || null;
		},
		// offer puts the survey in the list after seq, once.
		offer(seq) {
			if (rating) return;
			const view = createRating(async (score, comment) => {
				view.busy(true);
				try {
					rated = (await api.rate(score, comment || undefined)).rating;
					view.done(score);
				} catch (e) {
					view.error(e.status === 429 ? wait(e.retryAfter) : sentence(e.message));
					view.busy(false);
				}
			});
			if (rated) view.done(rated.score);
			rating = { view, li: msgs.card(view.el, seq) };
		},
		// reopened takes the survey away, unless it was answered.
		reopened() {
			if (rating && !rated) rating.li.remove();
			if (!rated) rating = null;
		},
		// rated takes a rated event's data, d.
		rated(d) {
			rated = d;
			if (rating) rating.view.done(d.score);
		},
		reset() {
			rated = null;
			rating = null;
		},
	};
}
