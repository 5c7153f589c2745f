// emailview.js: an email message in the thread (spec rule 8).
//
// What an email message shows: the envelope, its subject, From / To / Cc
// and the other headers on demand ("Details", GET
// .../messages/{mid}/email), its notices, and its body.
//
// The body's HTML (message.html) was sanitized by the server (no script,
// no event handlers, remote images moved to data-remote-src), and is shown
// all the same only inside <iframe class="email-html" sandbox> through
// srcdoc, never in the dashboard's own DOM: the sandbox has neither
// allow-scripts nor allow-same-origin, so nothing in the mail runs, and
// the frame is another origin that cannot reach the dashboard's cookies
// or DOM. Its document carries its own Content-Security-Policy
// (default-src 'none'; img-src data:; style-src 'unsafe-inline') on top
// of the dashboard's: no request leaves the frame, so a tracking pixel
// learns nothing. "Load remote images" builds the document again with each
// data-remote-src as src and https: http: added to img-src, for that
// message only. The mail's inline images (cid:, which the server rewrote
// to the attachment's URL) are fetched by the dashboard with its session
// and put in as data: URLs, since the sandboxed frame has no cookies.
// Links open in a new tab (allow-popups), with no referrer.
//
// Height: a sandboxed frame without scripts cannot tell its height, and
// the dashboard cannot read into it. The frame's height is estimated from
// the parsed (inert) document before it is shown: the text's length at the
// frame's width, the block elements and the images' sizes, between 60 and
// 520 px. A longer mail scrolls inside its frame, and the frame can be
// made taller by dragging its lower edge.
//
// The quoted history or signature the server cut (message.email.trimmed)
// is folded: "Show quoted text" loads the whole text and HTML from GET
// .../email and shows it instead.
//
// What the agent opened of a message (Details, the quoted text, remote
// images) is written down in an object the caller keeps by message id
// (thread.js): the conversation drawn again (a resync) opens them again.

import { h, icon, linkify } from "/static/shared/dom.js";

// ENVELOPE is Feather's "mail" icon (MIT).
export const ENVELOPE = "M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zM22 6l-10 7L2 6";

// envelope returns the envelope indicator of an email message.
export function envelope() {
	return h("span", { class: "envelope", role: "img", "aria-label": "Email", title: "Email" }, icon(ENVELOPE));
}

// The frame's own style: readable defaults for mail that sets none.
const FRAME_CSS =
	"html{color-scheme:light}body{margin:0;padding:10px 12px;font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1d2433;background:#fff;overflow-wrap:anywhere}" +
	"img{max-width:100%;height:auto}table{max-width:100%}pre{white-space:pre-wrap}blockquote{margin:0 0 0 8px;padding-left:10px;border-left:3px solid #dde1ea;color:#5d6679}a{color:#3451b2}";

const MIN_HEIGHT = 60;
const MAX_HEIGHT = 520;

// frameCSP is the Content-Security-Policy of an email's frame.
export function frameCSP(remote) {
	return "default-src 'none'; img-src data:" + (remote ? " https: http:" : "") + " ; style-src 'unsafe-inline'";
}

// parse reads HTML into an inert document: nothing in it loads or runs.
function parse(html) {
	return new DOMParser().parseFromString(html, "text/html");
}

// INLINE_IMAGE is the URL the server gives a mail's inline (cid:) image:
// one of the conversation's attachments.
const INLINE_IMAGE = /^\/api\/v1\/conversations\/\d+\/attachments\/\d+$/;

// inlineImages fetches the inline images of a document as data: URLs.
async function inlineImages(doc, cache) {
	const urls = new Set();
	for (const img of doc.querySelectorAll("img[src]")) {
		const src = img.getAttribute("src");
		if (INLINE_IMAGE.test(src) && !cache.has(src)) urls.add(src);
	}
	await Promise.all(
		[...urls].map(async (url) => {
			try {
				const res = await fetch(url, { credentials: "same-origin" });
				if (!res.ok || !/^image\/(png|jpeg|gif|webp)$/.test(res.headers.get("Content-Type") || "")) throw new Error();
				const blob = await res.blob();
				cache.set(url, await new Promise((resolve, reject) => {
					const r = new FileReader();
					r.onload = () => resolve(r.result);
					r.onerror = reject;
					r.readAsDataURL(blob);
				}));
			} catch {
				cache.set(url, "");
			}
		}),
	);
}

// srcdoc returns the frame's whole document for sanitized HTML: remote
// images as src when remote is true, inline images as data: URLs from
// cache (those not fetched are left out). The HTML is the server's
// sanitizer's output, whose attributes are always double-quoted and whose
// text never holds a raw quote, so the two attributes are rewritten in the
// string as they are.
export function srcdoc(html, { remote = false, inline = new Map() } = {}) {
	let body = html.replace(/ src="(\/api\/v1\/conversations\/\d+\/attachments\/\d+)"/g, (_, url) => {
		const data = inline.get(url);
		return data ? ' src="' + data + '"' : "";
	});
	if (remote) body = body.replace(/ data-remote-src="/g, ' src="');
	return (
		'<!doctype html><html><head><meta charset="utf-8">' +
		'<meta http-equiv="Content-Security-Policy" content="' + frameCSP(remote) + '">' +
		'<meta name="referrer" content="no-referrer"><base target="_blank">' +
		"<style>" + FRAME_CSS + "</style></head><body>" + body + "</body></html>"
	);
}

// estimateHeight guesses the height in px of HTML shown at width px (see
// the comment at the top).
export function estimateHeight(html, width, remote) {
	const doc = parse(html);
	const body = doc.body;
	const perLine = Math.max(20, Math.floor((width - 24) / 7.4));
	// Text after a block starts a line of its own: count it as one.
	const blocks = body.querySelectorAll("br,p,li,tr,h1,h2,h3,h4,h5,h6,blockquote,hr,div,table,ul,ol,pre");
	for (const el of blocks) {
		el.before("\n");
		el.after("\n");
	}
	let lines = 0;
	for (const chunk of (body.textContent || "").split("\n")) {
		const n = chunk.replace(/\s+/g, " ").trim().length;
		if (n) lines += Math.ceil(n / perLine);
	}
	lines += body.querySelectorAll("br,p,li,tr,h1,h2,h3,h4,h5,h6,blockquote,hr").length * 0.7;
	let px = 0;
	for (const img of body.querySelectorAll("img")) {
		const hAttr = parseInt(img.getAttribute("height"), 10);
		// An image not loaded takes its space only when its size is given.
		if (!img.getAttribute("src") && !(remote && img.hasAttribute("data-remote-src")) && !(hAttr > 0)) continue;
		const wAttr = parseInt(img.getAttribute("width"), 10);
		let ih = hAttr > 0 ? hAttr : 160;
		if (hAttr > 0 && wAttr > width) ih = Math.round((hAttr * width) / wAttr);
		px += ih;
	}
	// 40: the body's padding and a first block's top margin; better a
	// little room below than a last line cut off.
	return Math.round(Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, 40 + lines * 21 + px)));
}

function address(a) {
	if (!a) return "";
	return a.name ? `${a.name} <${a.addr}>` : a.addr;
}

function addresses(list) {
	return (list || []).map(address).join(", ");
}

// createEmailView returns the parts of an email message: head (subject
// and Details), body (HTML frame or text, its buttons and notices).
// loadDetails() returns a promise of GET .../email's answer, shared.
// opened is what the agent opened of this message, {details, quoted,
// remote}: read to open them again, and kept up to date.
export function createEmailView(ctx, msg, opened = {}) {
	const email = msg.email || {};
	const inline = new Map();
	let remote = !!opened.remote;
	let html = msg.html || "";
	let text = msg.text || "";
	let full = false;
	let details = null;

	function loadDetails() {
		if (!details) {
			details = ctx.api("GET", `/conversations/${msg.conversation_id}/messages/${msg.id}/email`);
			details.catch(() => (details = null));
		}
		return details;
	}

	// Head: the subject and the Details toggle.
	const panel = h("dl", { class: "email-details", hidden: true });
	const toggle = h("button", { type: "button", class: "link details-toggle", "aria-expanded": "false", text: "Details" });
	toggle.addEventListener("click", () => setDetails(panel.hidden));
	async function setDetails(open) {
		opened.details = open;
		toggle.setAttribute("aria-expanded", String(open));
		panel.hidden = !open;
		if (!open || panel.childElementCount) return;
		panel.replaceChildren(h("dd", { class: "muted", text: "Loading…" }));
		try {
			const d = await loadDetails();
			const row = (name, value) => (value ? [h("dt", { text: name }), h("dd", { text: value })] : []);
			panel.replaceChildren(
				...row("From", address(d.from)),
				...row("Reply-To", address(d.reply_to)),
				...row("To", addresses(d.to)),
				...row("Cc", addresses(d.cc)),
				...row("Subject", d.subject),
				...row("Date", new Date(d.created_at || msg.created_at).toLocaleString()),
				...row("Mailbox", d.mailbox),
				...row("Automatic mail", d.auto ? d.auto_reason || "yes" : ""),
			);
		} catch (err) {
			panel.replaceChildren(h("dd", { class: "error", text: "Could not load the details: " + err.message }));
		}
	}
	const head = h(
		"div",
		{ class: "email-head" },
		h("span", { class: "subject", text: email.subject || "(no subject)" }),
		email.auto ? h("span", { class: "tag", text: "Automatic" }) : null,
		toggle,
	);

	// Body.
	const content = h("div", { class: "email-content" });
	const actions = h("div", { class: "email-actions" });
	const remoteBtn = h("button", { type: "button", class: "secondary small", text: "Load remote images" });
	const quotedBtn = h("button", { type: "button", class: "secondary small", text: "Show quoted text" });
	remoteBtn.addEventListener("click", () => {
		remote = opened.remote = true;
		remoteBtn.remove();
		render();
	});
	quotedBtn.addEventListener("click", showQuoted);
	async function showQuoted() {
		opened.quoted = true;
		quotedBtn.disabled = true;
		quotedBtn.textContent = "Loading…";
		try {
			const d = await loadDetails();
			full = true;
			html = d.full_html || "";
			text = d.full_text || text;
			quotedBtn.remove();
			render();
		} catch (err) {
			opened.quoted = false;
			quotedBtn.disabled = false;
			quotedBtn.textContent = "Show quoted text";
			actions.append(h("span", { class: "error", text: err.message }));
		}
	}

	let frame = null;
	async function render() {
		if (!html) {
			frame = null;
			content.replaceChildren(h("div", { class: "text" }, linkify(text)));
		} else {
			const wrap = h("div", { class: "email-frame" });
			frame = h("iframe", {
				class: "email-html",
				sandbox: "allow-popups allow-popups-to-escape-sandbox",
				referrerpolicy: "no-referrer",
				title: "Email: " + (email.subject || "(no subject)"),
			});
			wrap.append(frame);
			content.replaceChildren(wrap);
			const size = () => (wrap.style.height = estimateHeight(html, content.clientWidth || 560, remote) + "px");
			size();
			// Not in the page yet: measure the width once it is.
			if (!content.clientWidth) requestAnimationFrame(size);
			const doc = parse(html);
			if (doc.querySelector("img[src]")) await inlineImages(doc, inline);
			frame.srcdoc = srcdoc(html, { remote, inline });
		}
		const hasRemote = html.includes("data-remote-src");
		if (!hasRemote || remote) remoteBtn.remove();
		else if (!remoteBtn.isConnected) actions.prepend(remoteBtn);
		if (!email.trimmed || full) quotedBtn.remove();
		else if (!quotedBtn.isConnected) actions.append(quotedBtn);
	}

	const notices = (email.notices || []).length
		? h("ul", { class: "email-notices" }, email.notices.map((n) => h("li", { text: n })))
		: null;
	const body = h("div", { class: "email-body" }, notices, content, actions);
	render();
	if (opened.details) setDetails(true);
	if (opened.quoted && email.trimmed) showQuoted();

	return { head, details: panel, body, loadDetails };
}
