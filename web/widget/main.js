// The widget's entry point. Any page embeds it with
//   <script src="https://HOST/widget.js" async></script>
// and gets the "Live Chat" launcher, in an open Shadow DOM on a host
// element of its own, and window.Microchat (app.js). Calls made before the
// script loaded, queued as window.Microchat = [["identify", {...}], ...],
// run once it has; "microchat:ready" is dispatched on window then.
import { readConfig } from "./config.js";
import { createApp } from "./app.js";

const script = document.currentScript || document.querySelector("script[src*='widget.js']");

function mount() {
	const host = document.createElement("div");
	host.id = "microchat-widget";
	const root = host.attachShadow({ mode: "open" });
	document.body.append(host);
	const app = createApp(readConfig(script), root);
	const queued = Array.isArray(window.Microchat) ? window.Microchat : [];
	window.Microchat = app.api;
	app.boot();
	for (const [name, ...args] of queued) if (typeof app.api[name] === "function") app.api[name](...args);
	window.dispatchEvent(new Event("microchat:ready"));
}

if (!window.__microchatLoaded) {
	window.__microchatLoaded = true;
	if (document.body) mount();
	else document.addEventListener("DOMContentLoaded", mount);
}
