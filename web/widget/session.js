// The visitor's session: Start Chat gets a visitor token (POST
// /conversations, with the pages viewed before), which store.js keeps for
// every page and tab of the site; boot picks up the one kept. These are
// functions of the widget's parts, w (app.js).
import { getToken, setToken } from "./store.js";
import { loadState } from "./state.js";
import { wait, sentence } from "./text.js";

// startChat sends the pre-chat form's values, v, and opens the chat.
export async function startChat(w, v) {
	const { form, panel, composer } = w.shell;
	w.pages.take();
	form.busy(true);
	panel.error("");
	try {
		const r = await w.api.start({ name: v.name, email: v.email || undefined, phone: v.phone || undefined, pages: w.pages.saved() });
		w.pages.sent();
		setToken(r.token);
		await loadState(w, true);
		composer.focus();
	} catch (e) {
		if (e.status === 429) panel.error(wait(e.retryAfter));
		else if (e.field) form.setError(e.field, sentence(fieldError(e)));
		else panel.error(sentence(e.message));
	} finally {
		form.busy(false);
	}
}

// fieldError is the text of e, an error about one of the form's fields,
// under that field: "name: must not contain NUL characters" under Name
// names the field once, "must not contain NUL characters.".
function fieldError(e) {
	return /^(name|email|phone)$/.test(e.field) && e.message.startsWith(e.field + ": ") ? e.message.slice(e.field.length + 2) : e.message;
}

// boot starts the widget: the conversation of the token kept, if any,
// else the pre-chat form; and the panel as it was.
export function boot(w) {
	w.pages.first();
	if (getToken()) loadState(w, true);
	else w.shell.showForm(null);
	w.shell.restore();
}
