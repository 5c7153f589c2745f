// window.Microchat, the page's API (docs/widget.md "JavaScript API"), and
// the events the page can listen to: "message" (an agent's message
// arrived), "open" and "close" (the panel).

// createListeners returns the page's listeners.
export function createListeners() {
	const listeners = { message: [], open: [], close: [] };
	return {
		// emit calls each listener of name with data: one that throws is
		// logged and does not stop the others.
		emit(name, data) {
			for (const fn of listeners[name] || []) {
				try {
					fn(data);
				} catch (e) {
					console.error("Microchat " + name + " listener:", e);
				}
			}
		},
		on(name, fn) {
			if (listeners[name] && typeof fn === "function") listeners[name].push(fn);
		},
		off(name, fn) {
			if (listeners[name]) listeners[name] = listeners[name].filter((f) => f !== fn);
		},
	};
}

// messageEvent is what "message" listeners get for an agent's message m,
// whose agent is called name.
export function messageEvent(m, name) {
	return {
		id: m.id,
		text: m.text,
		author: m.author,
		agent_name: name,
		created_at: m.created_at,
		attachments: (m.attachments || []).map((x) => ({ name: x.name, content_type: x.content_type, size: x.size })),
	};
}

// microchatApi returns window.Microchat, over the widget's shell
// (shell.js) and the page's listeners.
export function microchatApi(shell, listeners) {
	return {
		// open shows the panel and moves the focus into it.
		open: () => shell.open(true),
		// close minimizes the panel; nothing is lost.
		close: () => shell.close(false),
		// hide takes the launcher and the panel off the page (for a modal
		// of the site, say) until show; the chat goes on.
		hide: () => shell.setHidden(true),
		show: () => shell.setHidden(false),
		// identify fills the pre-chat form's empty fields.
		identify(v) {
			v = v || {};
			shell.identify({ name: v.name || "", email: v.email || "", phone: v.phone || "" });
		},
		// on calls fn on "message" ({id, text, author, agent_name,
		// created_at, attachments}), "open" and "close".
		on: listeners.on,
		off: listeners.off,
	};
}
