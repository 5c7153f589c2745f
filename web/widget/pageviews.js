// Page views: the page the widget loads on, and every change of the
// page's URL, however the site navigates (history.pushState and
// replaceState, back and forward, the hash). A view's title is read when
// the next change comes or 500 ms later, as single-page sites set it
// after the URL. Before Start Chat they are kept (store.js) for Start Chat
// to send; after, each is sent over the socket, or waits until it is
// open.
import { getToken, load, save } from "./store.js";

function pageInfo() {
	return { url: location.href.slice(0, 2048), title: document.title.slice(0, 300), referrer: document.referrer.slice(0, 2048) };
}

// savePage keeps a view until Start Chat: the last 20.
function savePage(v) {
	save("pages", [...load("pages", []), { ...v, at: new Date().toISOString() }].slice(-20));
}

// createPageViews starts watching the page's URL. send(frame) writes a
// frame on the socket, false when it is not open.
export function createPageViews(send) {
	let views = []; // page views not yet sent over the socket
	let lastUrl = location.href;
	let nextView = null; // the page view whose title is awaited
	let viewTimer = 0;

	function urlChanged() {
		if (location.href === lastUrl) return;
		take();
		nextView = { url: location.href.slice(0, 2048), referrer: lastUrl.slice(0, 2048) };
		lastUrl = location.href;
		viewTimer = setTimeout(take, 500);
	}

	// take records the view whose title is awaited, with the title now.
	function take() {
		clearTimeout(viewTimer);
		if (!nextView) return;
		const v = { ...nextView, title: document.title.slice(0, 300) };
		nextView = null;
		if (getToken()) {
			views = [...views, v].slice(-20);
			flush();
		} else savePage(v);
	}

	// flush sends the views kept while the socket takes them.
	function flush() {
		while (views.length && send({ type: "page_view", ...views[0] })) views.shift();
	}

	for (const k of ["pushState", "replaceState"]) {
		const orig = history[k];
		history[k] = function (...args) {
			const r = orig.apply(this, args);
			urlChanged();
			return r;
		};
	}
	window.addEventListener("popstate", urlChanged);
	window.addEventListener("hashchange", urlChanged);

	return {
		take,
		flush,
		// first records the page the widget loaded on.
		first() {
			if (getToken()) views.push(pageInfo());
			else savePage(pageInfo());
		},
		// saved returns the views kept for Start Chat; sent forgets them.
		saved: () => load("pages", []),
		sent: () => save("pages", null),
	};
}
