// The message box: Enter sends, Shift+Enter breaks the line; the paper
// clip picks files, and files dropped on the chat or pasted (screenshots)
// are sent too. It reports the visitor's typing: true when they start and
// again at most every 5 s while they keep typing (an indicator lasts 10 s,
// docs/widget-protocol.md), false 4 s after they stop or when they send.
// The text stays in the box until onSend takes it (returns true).
import { h, icon, ICONS } from "./dom.js";

export function createComposer({ onSend, onFiles, onTyping, onDraft }) {
	const text = h("textarea", { id: "mc-text", rows: "1", placeholder: "Type your message...", dir: "auto" });
	const files = h("input", { type: "file", multiple: true, hidden: true, tabindex: "-1" });
	const el = h(
		"form",
		{ class: "composer" },
		h("label", { class: "sr", for: "mc-text", text: "Message" }),
		h("button", { type: "button", class: "icon-btn clip", "aria-label": "Attach a file", title: "Attach a file", onclick: () => files.click() }, icon(ICONS.clip)),
		text,
		files,
		h("button", { type: "submit", class: "icon-btn send", "aria-label": "Send", title: "Send" }, icon(ICONS.send)),
	);
	let typing = false;
	let lastSent = 0;
	let stopTimer = 0;

	function setTyping(t) {
		clearTimeout(stopTimer);
		if (t) {
			stopTimer = setTimeout(() => setTyping(false), 4000);
			if (typing && Date.now() - lastSent < 5000) return;
			lastSent = Date.now();
		} else if (!typing) return;
		typing = t;
		onTyping(t);
	}

	function grow() {
		text.style.height = "auto";
		text.style.height = Math.min(text.scrollHeight, 120) + "px";
	}

	function send() {
		const v = text.value.trim();
		if (!v) return;
		setTyping(false);
		if (!onSend(v)) return;
		text.value = "";
		onDraft("");
		grow();
	}

	el.addEventListener("submit", (e) => {
		e.preventDefault();
		send();
		text.focus();
	});
	text.addEventListener("keydown", (e) => {
		if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
			e.preventDefault();
			send();
		}
	});
	text.addEventListener("input", () => {
		grow();
		onDraft(text.value);
		setTyping(text.value.trim() !== "");
	});
	text.addEventListener("paste", (e) => {
		const list = [...((e.clipboardData && e.clipboardData.files) || [])];
		if (list.length) {
			e.preventDefault();
			onFiles(list);
		}
	});
	files.addEventListener("change", () => {
		const list = [...files.files];
		files.value = "";
		if (list.length) onFiles(list);
	});

	return {
		el,
		focus: () => text.focus(),
		setDraft(v) {
			text.value = v || "";
			grow();
		},
		// restore gives back the text of a message that was not stored,
		// before what is being typed, so that it can be edited and sent.
		restore(v) {
			text.value = text.value.trim() ? v + "\n\n" + text.value : v;
			onDraft(text.value);
			grow();
		},
	};
}

// dropZone makes el take files dragged onto it, showing a hint while they
// are over it.
export function dropZone(el, onFiles) {
	const hint = h("div", { class: "drop", "aria-hidden": "true", hidden: true }, icon(ICONS.clip), h("p", { text: "Drop files to send them" }));
	el.append(hint);
	let depth = 0;
	const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
	el.addEventListener("dragenter", (e) => {
		if (!hasFiles(e)) return;
		e.preventDefault();
		depth++;
		hint.hidden = false;
	});
	el.addEventListener("dragover", (e) => {
		if (hasFiles(e)) e.preventDefault();
	});
	el.addEventListener("dragleave", () => {
		if (--depth <= 0) {
			depth = 0;
			hint.hidden = true;
		}
	});
	el.addEventListener("drop", (e) => {
		if (!hasFiles(e)) return;
		e.preventDefault();
		depth = 0;
		hint.hidden = true;
		onFiles([...e.dataTransfer.files]);
	});
}
