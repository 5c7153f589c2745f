// The widget on the page: the launcher and the panel (launcher.js,
// panel.js) in the shadow root, with the widget's styles. The panel holds
// either the pre-chat form (prechat.js) or the chat: the status line
// (status.js), the messages (messages.js) and the message box
// (composer.js). It opens and closes the panel, keeps per tab whether it
// was open and the draft being typed (store.js), and tells screen readers
// what arrives.
import { h } from "./dom.js";
import { load, save } from "./store.js";
import { createLauncher } from "./launcher.js";
import { createPanel } from "./panel.js";
import { createStatus } from "./status.js";
import { createPrechat } from "./prechat.js";
import { createMessages } from "./messages.js";
import { createComposer, dropZone } from "./composer.js";
import { WIDGET_CSS } from "./css.js";

// wrapIn puts kids in root (the shadow root), in the widget's wrapper,
// with the widget's styles and the page's accent color, if cfg has one,
// and returns the wrapper. The widget's own interface is left to right
// whatever the page's direction; each message and the message box take
// theirs from their text (dir="auto"). A constructed style sheet works
// under a page's strict CSP (style-src without 'unsafe-inline'), which
// blocks a <style>.
function wrapIn(root, cfg, ...kids) {
	const wrap = h("div", { class: "mc " + cfg.position, dir: "ltr" }, ...kids);
	if (cfg.color) {
		wrap.style.setProperty("--mc-accent", cfg.color);
		wrap.style.setProperty("--mc-accent-ink", cfg.ink);
		// A light accent is not readable as text or icons on white.
		if (cfg.ink !== "#fff") wrap.style.setProperty("--mc-accent-fg", "#1d2329");
	}
	try {
		const sheet = new CSSStyleSheet();
		sheet.replaceSync(WIDGET_CSS);
		root.adoptedStyleSheets = [sheet];
	} catch {
		root.append(h("style", { text: WIDGET_CSS }));
	}
	root.append(wrap);
	return wrap;
}

// createShell builds the widget in root (the shadow root) for cfg
// (config.js). on has what the views report: start(values) is Start
// Chat; send(text), files(files) and typing(bool) come from the message
// box; older() asks for earlier messages; fetchFile(id) resolves to an
// attachment's blob URL; opened() and closed() follow the panel.
export function createShell(cfg, root, on) {
	let opened = false;
	let identity = {}; // Microchat.identify's values, for the form
	const launcher = createLauncher(() => (opened ? close(true) : open(true)));
	const panel = createPanel(cfg.title, () => close(true));
	const status = createStatus();
	const form = createPrechat(on.start);
	const msgs = createMessages({ fetchFile: on.fetchFile, onOlder: on.older, onError: (t) => panel.error(t, 10000) });
	const composer = createComposer({ onSend: on.send, onFiles: on.files, onTyping: on.typing, onDraft: (v) => save("draft", v || null, true) });
	const chat = h("div", { class: "chat", hidden: true }, status.el, msgs.el, composer.el);
	dropZone(chat, on.files);
	const announcer = h("div", { class: "sr", "aria-live": "polite" });
	panel.body.append(form.el, chat);
	const wrap = wrapIn(root, cfg, panel.el, launcher.el, announcer);
	composer.setDraft(load("draft", "", true));

	function open(user) {
		opened = true;
		panel.el.hidden = false;
		wrap.classList.add("open");
		launcher.setOpen(true);
		save("open", true, true);
		if (user) (chat.hidden ? form : composer).focus();
		msgs.scrollDown();
		on.opened();
	}

	function close(user) {
		const inside = panel.el.contains(root.activeElement);
		opened = false;
		panel.el.hidden = true;
		wrap.classList.remove("open");
		launcher.setOpen(false);
		save("open", false, true);
		if (user || inside) launcher.button.focus();
		on.closed();
	}

	return {
		launcher,
		panel,
		status,
		form,
		msgs,
		composer,
		open,
		close,
		// setHidden hides the whole widget (Microchat.hide) or shows it.
		setHidden(hide) {
			if (hide && wrap.contains(root.activeElement)) root.activeElement.blur();
			wrap.hidden = hide;
		},
		// showForm shows the pre-chat form, filled from contact, then identity.
		showForm(contact) {
			chat.hidden = true;
			form.el.hidden = false;
			form.fill({ name: contact && contact.name, email: contact && contact.email, phone: contact && contact.phone });
			form.fill(identity);
		},
		showChat() {
			form.el.hidden = true;
			chat.hidden = false;
		},
		identify(v) {
			identity = v;
			form.fill(identity);
		},
		announce(text) {
			announcer.textContent = text;
		},
		isOpen: () => opened,
		// reading says whether the visitor sees the conversation.
		reading: () => opened && !chat.hidden,
		// restore opens the panel as it was in this tab, or as data-open says.
		restore() {
			const was = load("open", null, true);
			if (was || (was === null && cfg.open)) open(false);
		},
	};
}
