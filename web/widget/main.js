// The widget's entry point. Any page embeds it with
//   <script src="https://HOST/widget.js" async></script>
// and gets the "Live Chat" launcher, in an open Shadow DOM on a host
// element of its own, and window.Microchat (microchat.js). Calls made
// before the script loaded, queued as window.Microchat = [["identify",
// {...}], ...], run once it has; "microchat:ready" is dispatched on window
// then.
//
// Pages that replace document.body (Turbo, some routers) take the host
// element with the old body: the widget puts it back into the new one, with
// its conversation and socket as they were, and running the script again
// does the same rather than starting a second widget.
import { readConfig } from "./config.js";
import { createApp } from "./app.js";

const script = document.currentScript || document.querySelector("script[src*='widget.js']");

// attach puts the host element back into the page when it left it.
function attach() {
	const host = window.__microchatHost;
	if (host && !host.isConnected && document.body) document.body.append(host);
}

function mount() {
	const host = document.createElement("div");
	host.id = "microchat-widget";
	const root = host.attachShadow({ mode: "open" });
	window.__microchatHost = host;
	document.body.append(host);
	new MutationObserver(attach).observe(document, { childList: true, subtree: true });
	const app = createApp(readConfig(script), root);
	const queued = Array.isArray(window.Microchat) ? window.Microchat : [];
	window.Microchat = app.api;
	app.boot();
	for (const [name, ...args] of queued) if (typeof app.api[name] === "function") app.api[name](...args);
	window.dispatchEvent(new Event("microchat:ready"));
}

if (window.__microchatLoaded) attach();
else {
	window.__microchatLoaded = true;
	if (document.body) mount();
	else document.addEventListener("DOMContentLoaded", mount);
}
