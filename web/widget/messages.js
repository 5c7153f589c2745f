// The conversation: messages in sequence order, the visitor's unsent ones
// after them, system lines (an agent joined or left, the chat ended),
// attachments (images previewed, other files as links), the receipt under
// the visitor's latest message ("Sending...", "Sent", "Seen"), and who is
// typing. Every text from a person goes in as text.
import { h, icon, ICONS, linkify, formatSize, clockTime } from "./dom.js";

const INLINE = ["image/png", "image/jpeg", "image/gif", "image/webp"];

// createMessages returns the list. fetchFile(id) resolves to a blob URL of
// an attachment; onOlder loads the messages before the first.
export function createMessages({ fetchFile, onOlder, onError }) {
	const list = h("ol", { class: "msgs", "aria-label": "Messages" });
	const typing = h("p", { class: "typing", hidden: true });
	const older = h("button", { type: "button", class: "older", hidden: true, onclick: onOlder, text: "Show earlier messages" });
	const empty = h("p", { class: "empty", text: "Ask us anything: write your question below and a member of our team will answer here." });
	const el = h("div", { class: "scroll", tabindex: "0", "aria-label": "Conversation" }, older, list, empty, typing);
	// Stay at the bottom when the panel or what is above it changes size.
	let atBottom = true;
	el.addEventListener("scroll", () => (atBottom = nearBottom()));
	new ResizeObserver(() => atBottom && scrollDown()).observe(el);
	const byId = new Map();
	const pending = new Map();

	function nearBottom() {
		return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
	}

	function scrollDown() {
		el.scrollTop = el.scrollHeight;
		atBottom = true;
	}

	// insert puts li where its seq goes: before the first later one, and
	// before the unsent messages, which have no seq.
	function insert(li, seq) {
		let next = null;
		for (let c = list.lastElementChild; c; c = c.previousElementSibling) {
			const s = c.dataset.seq;
			if (s === undefined || +s > seq) next = c;
			else break;
		}
		list.insertBefore(li, next);
	}

	function attachment(a) {
		const label = a.name + " (" + formatSize(a.size) + ")";
		if (INLINE.includes(a.content_type)) {
			const img = h("img", { alt: a.name, onload: () => atBottom && scrollDown() });
			const link = h("a", { class: "att-img", href: "#", target: "_blank", rel: "noopener", "aria-label": "Image: " + label }, img);
			fetchFile(a.id)
				.then((url) => {
					img.src = url;
					link.href = url;
				})
				.catch(() => link.replaceChildren(a.name + " (could not be loaded)"));
			return link;
		}
		const link = h("a", { class: "att-file", href: "#", download: a.name }, icon(ICONS.file), h("span", { text: label }));
		link.addEventListener("click", (e) => {
			if (link.href.startsWith("blob:")) return;
			e.preventDefault();
			fetchFile(a.id)
				.then((url) => {
					link.href = url;
					link.click();
				})
				.catch((err) => onError("The file " + a.name + " could not be downloaded: " + err.message));
		});
		return link;
	}

	function bubble(text, attachments) {
		const media = !text && attachments && attachments.length && attachments.every((a) => INLINE.includes(a.content_type));
		return h("div", { class: media ? "bubble media" : "bubble" }, text ? h("p", { class: "text", dir: "auto" }, linkify(text)) : null, (attachments || []).map(attachment));
	}

	return {
		el,
		clear() {
			list.replaceChildren();
			byId.clear();
			pending.clear();
			older.hidden = true;
		},
		// add shows a stored message, once; name is the agent's.
		add(m, name) {
			if (byId.has(m.id)) return;
			if (m.client_id && pending.has(m.client_id)) {
				pending.get(m.client_id).remove();
				pending.delete(m.client_id);
			}
			const down = nearBottom() || m.author === "contact";
			const author = m.author === "agent" ? "agent-" + (m.agent_id || 0) : m.author;
			const li = h("li", { class: "msg " + m.author, "data-seq": m.seq, "data-author": author });
			if (m.author === "system") li.append(h("p", { class: "sysline", dir: "auto", text: m.text }));
			else {
				let prev = null;
				for (let c = list.lastElementChild; c; c = c.previousElementSibling) if (c.dataset.seq && +c.dataset.seq < m.seq) { prev = c; break; }
				if (m.author === "agent" && (!prev || prev.dataset.author !== author)) li.append(h("p", { class: "who", dir: "auto", text: name || "Support" }));
				li.append(bubble(m.text, m.attachments), h("p", { class: "meta" }, h("time", { datetime: m.created_at, text: clockTime(m.created_at) }), h("span", { class: "receipt" })));
			}
			byId.set(m.id, li);
			insert(li, m.seq);
			if (down) scrollDown();
		},
		// system shows a line about the conversation (joined, left, ended).
		system(text, seq) {
			const li = h("li", { class: "msg system", "data-seq": seq || 0, "data-author": "system" }, h("p", { class: "sysline", text }));
			insert(li, seq || Number.MAX_SAFE_INTEGER);
			if (nearBottom()) scrollDown();
			return li;
		},
		// card shows an element (the rating) after the event seq.
		card(node, seq) {
			const li = h("li", { class: "msg card", "data-seq": seq }, node);
			insert(li, seq);
			scrollDown();
			return li;
		},
		// addPending shows a message the server has not stored yet.
		addPending(p, note) {
			let li = pending.get(p.client_id);
			if (!li) {
				li = h("li", { class: "msg contact pending" }, bubble(p.text, []), h("p", { class: "meta" }, h("span", { class: "receipt" })));
				if (p.attachments && p.attachments.length) li.querySelector(".bubble").append(...p.attachments.map((a) => h("p", { class: "att-file" }, icon(ICONS.file), a.name)));
				pending.set(p.client_id, li);
				list.append(li);
				scrollDown();
			}
			li.classList.toggle("failed", /^Not sent/.test(note || ""));
			li.querySelector(".receipt").textContent = note || "Sending...";
			if (atBottom) scrollDown();
			return li;
		},
		removePending(clientId) {
			const li = pending.get(clientId);
			if (li) li.remove();
			pending.delete(clientId);
		},
		// receipts writes "Seen" under the latest visitor message the
		// agents have read (up to seq seen), and "Sent" under the latest
		// one if they have not read it yet.
		receipts(seen) {
			const mine = [...list.querySelectorAll("li.contact:not(.pending)")];
			for (const li of mine) li.querySelector(".receipt").textContent = "";
			const last = mine[mine.length - 1];
			if (!last) return;
			const lastSeen = mine.filter((li) => +li.dataset.seq <= seen).pop();
			if (lastSeen) lastSeen.querySelector(".receipt").textContent = "Seen";
			if (last !== lastSeen) last.querySelector(".receipt").textContent = "Sent";
		},
		typing(names) {
			typing.hidden = names.length === 0;
			typing.textContent = names.length ? names.join(", ") + (names.length > 1 ? " are typing..." : " is typing...") : "";
			if (names.length && nearBottom()) scrollDown();
		},
		hasOlder(b) {
			older.hidden = !b;
		},
		firstSeq() {
			const first = list.querySelector("li[data-seq]");
			return first ? +first.dataset.seq : 0;
		},
		// keepPosition runs fn, which adds messages above, without moving
		// what the visitor sees.
		keepPosition(fn) {
			const before = el.scrollHeight - el.scrollTop;
			fn();
			el.scrollTop = el.scrollHeight - before;
		},
		scrollDown,
	};
}
