// The demo website's own script: its "Talk to a gear expert" links open
// the chat through the widget's JS API. Calls made before widget.js has
// loaded wait in the window.Microchat queue.
window.Microchat = window.Microchat || [];
document.addEventListener("click", (e) => {
	const link = e.target.closest("[data-open-chat]");
	if (!link) return;
	e.preventDefault();
	if (Array.isArray(window.Microchat)) window.Microchat.push(["open"]);
	else window.Microchat.open();
});
