// composer.js: writing in the conversation shown (issue 13, item 5).
//
// - The textarea ("Message"): Enter sends, Shift+Enter is a new line, Esc
//   leaves it. Its text is the conversation's draft (ctx.drafts), kept
//   per conversation across reloads and session expiry.
// - "Reply channel": Auto, Chat, Email or Note, and #channel-reason saying
//   what the choice does right now and why (GET .../reply-channel, spec
//   rule 5), asked again when the contact comes or goes.
// - The contact sees the agent typing: typing true at most every 5 s
//   while keys come, false 4 s after the last one, on sending, and on
//   leaving the conversation. Never while writing a private note.
// - Files: the paper clip, drag and drop (on the whole thread, through
//   addFiles) and paste upload each file at once (POST
//   .../attachments, multipart), with its progress and its error; the
//   reply names the finished ones in attachment_ids.
// - Saved replies: "/" at the start of the text opens a list filtered as
//   one types (GET /saved-replies); Enter or Tab inserts the chosen one.
// - A private note is one message: after it the channel is Auto again.
// - Sending hands the reply to replies.js, which sends it over the
//   socket, or keeps it until the socket is back.

import { h, icon, ICONS, formatSize } from "/static/shared/dom.js";

const TYPING_RENEW_MS = 5000;
const TYPING_IDLE_MS = 4000;
const SAVED_TTL_MS = 60000;

const CHANNELS = [
	["auto", "Auto"],
	["chat", "Chat"],
	["email", "Email"],
	["note", "Note"],
];

// describe says in a few words what a reply on the requested channel
// does now, from GET .../reply-channel's decision (inbox.ReplyDecision).
export function describe(d, requested, contact) {
	const email = (contact && contact.email) || "their address";
	if (d.channel === "email") return (requested === "auto" ? "visitor offline: " : "") + "will send by email to " + email;
	if (d.state === "queued") {
		if (requested === "auto") {
			return contact && contact.email
				? "offline, email unavailable: delivered when they return"
				: "offline, no email: delivered when they return";
		}
		return "visitor offline: delivered by chat when they return";
	}
	return "visitor online: chat";
}

// fileName is a file's name in its chip: a long one is cut in the
// middle, its end (the extension) always shown ("quarterly-rep….pdf").
function fileName(name) {
	const dot = name.lastIndexOf(".");
	const cut = dot > 0 && name.length - dot <= 8 ? dot : name.length;
	return h("span", { class: "name" }, h("span", { class: "stem", text: name.slice(0, cut) }), h("span", { class: "ext", text: name.slice(cut) }));
}

export function createComposer(ctx, replies, hooks = {}) {
	let item = null; // the conversation's ConversationItem
	const state = new Map(); // conversation id -> {channel, uploads}
	let typingSentAt = 0;
	let typingIn = 0; // the conversation the agent was last said to type in
	let typingStop = 0;
	let draftTimer = 0;
	let reasonReq = 0;
	let saved = null; // {at, items}
	let pick = null; // the saved-replies picker: {items, index}
	let asked = {}; // the contact's presence and email when the reason was last asked

	const textarea = h("textarea", {
		"aria-label": "Message",
		rows: "2",
		placeholder: "Write a reply… Enter sends, Shift+Enter for a new line, / for saved replies",
		"aria-autocomplete": "list",
		"aria-controls": "saved-replies",
		"aria-expanded": "false",
	});
	const picker = h("ul", { class: "saved-replies", id: "saved-replies", role: "listbox", "aria-label": "Saved replies", hidden: true });
	const select = h("select", { "aria-label": "Reply channel" }, CHANNELS.map(([v, label]) => h("option", { value: v, text: label })));
	const reason = h("span", { id: "channel-reason", "aria-live": "polite" });
	const fileInput = h("input", { type: "file", multiple: true, hidden: true, tabindex: "-1" });
	const clip = h("button", { type: "button", class: "icon-button", "aria-label": "Attach file", title: "Attach file" }, icon(ICONS.clip));
	const sendBtn = h("button", { type: "submit", class: "send", "aria-label": "Send" }, icon(ICONS.send), h("span", { text: "Send" }));
	const uploadsList = h("ul", { class: "uploads", "aria-label": "Attachments to send" });
	const hint = h("p", { class: "composer-hint", role: "status" });
	const form = h(
		"form",
		{ class: "composer", "aria-label": "Reply" },
		uploadsList,
		h("div", { class: "composer-input" }, textarea, picker),
		h("div", { class: "composer-bar" }, clip, fileInput, h("label", { class: "channel" }, select), reason, hint, sendBtn),
	);

	function conv() {
		if (!item) return null;
		let s = state.get(item.id);
		if (!s) {
			s = { channel: "auto", uploads: [] };
			state.set(item.id, s);
		}
		return s;
	}

	// --- typing -------------------------------------------------------

	function typing(on) {
		clearTimeout(typingStop);
		if (on) {
			if (!item || select.value === "note") return;
			const now = Date.now();
			if (typingIn !== item.id || now - typingSentAt >= TYPING_RENEW_MS) {
				if (typingIn && typingIn !== item.id) ctx.send({ type: "typing", conversation_id: typingIn, typing: false });
				if (ctx.send({ type: "typing", conversation_id: item.id, typing: true }) !== false) {
					typingIn = item.id;
					typingSentAt = now;
				}
			}
			typingStop = setTimeout(() => typing(false), TYPING_IDLE_MS);
			return;
		}
		if (typingIn) ctx.send({ type: "typing", conversation_id: typingIn, typing: false });
		typingIn = 0;
		typingSentAt = 0;
	}

	// --- drafts -------------------------------------------------------

	function saveDraft() {
		clearTimeout(draftTimer);
		if (item) ctx.drafts.set(item.id, textarea.value);
	}

	function autosize() {
		textarea.style.height = "auto";
		textarea.style.height = Math.min(textarea.scrollHeight + 2, 240) + "px";
	}

	// --- the reply channel -------------------------------------------

	function setReason(text, error, title) {
		reason.textContent = text;
		reason.classList.toggle("error", !!error);
		if (title) reason.title = title;
		else reason.removeAttribute("title");
	}

	async function refreshChannel() {
		const n = ++reasonReq;
		const c = (item && item.contact) || {};
		asked = { online: !!c.online, email: c.email || "" };
		form.classList.toggle("note", select.value === "note");
		if (!item) return setReason("");
		const ch = select.value;
		if (item.placeholder && ch !== "note") return setReason("");
		textarea.placeholder =
			ch === "note"
				? "Private note: only agents see it. Enter saves it."
				: "Write a reply… Enter sends, Shift+Enter for a new line, / for saved replies";
		if (ch === "note") {
			typing(false);
			return setReason("private note: only agents see it");
		}
		try {
			const d = await ctx.api("GET", `/conversations/${item.id}/reply-channel?channel=${ch}`);
			if (n !== reasonReq) return;
			setReason(describe(d, ch, item.contact), false, d.reason);
		} catch (err) {
			if (n !== reasonReq) return;
			setReason((err.field === "channel" ? "email unavailable: " : "cannot tell now: ") + err.message, true);
		}
	}

	select.addEventListener("change", () => {
		const s = conv();
		if (s) s.channel = select.value;
		refreshChannel();
	});

	// --- uploads ------------------------------------------------------

	function drawUploads() {
		const s = conv();
		const list = s ? s.uploads : [];
		uploadsList.replaceChildren(
			...list.map((u) => {
				const remove = h("button", { type: "button", class: "icon-button small", "aria-label": "Remove " + u.name, title: "Remove" }, icon(ICONS.x));
				remove.addEventListener("click", () => {
					if (u.xhr) u.xhr.abort();
					s.uploads = s.uploads.filter((x) => x !== u);
					drawUploads();
				});
				const thumb =
					u.status === "done" && /^image\/(png|jpeg|gif|webp)$/.test(u.attachment.content_type)
						? h("img", { class: "thumb", alt: "", src: `/api/v1/conversations/${u.attachment.conversation_id}/attachments/${u.attachment.id}` })
						: h("span", { class: "file-icon" }, icon(ICONS.file));
				u.bar = u.status === "uploading" ? h("progress", { max: "1", value: String(u.progress || 0), "aria-label": "Uploading " + u.name }) : null;
				return h(
					"li",
					{ class: "upload " + u.status, title: u.name },
					thumb,
					fileName(u.name),
					h("span", { class: "size", text: formatSize(u.size) }),
					u.bar,
					u.status === "error" ? h("span", { class: "error", role: "alert", title: u.error, text: u.error }) : null,
					remove,
				);
			}),
		);
		uploadsList.hidden = list.length === 0;
	}

	function upload(conversationID, u) {
		return new Promise((resolve, reject) => {
			const xhr = new XMLHttpRequest();
			u.xhr = xhr;
			xhr.open("POST", `/api/v1/conversations/${conversationID}/attachments`);
			xhr.setRequestHeader("Accept", "application/json");
			const session = ctx.session && ctx.session();
			if (session && session.csrf_token) xhr.setRequestHeader("X-CSRF-Token", session.csrf_token);
			xhr.upload.onprogress = (e) => {
				if (!e.lengthComputable) return;
				u.progress = e.loaded / e.total;
				if (u.bar) u.bar.value = u.progress;
			};
			xhr.onload = () => {
				let body = null;
				try {
					body = JSON.parse(xhr.responseText);
				} catch {}
				if (xhr.status === 201 && body && body.attachment) return resolve(body.attachment);
				if (xhr.status === 401) ctx.bus.emit("session-ended");
				reject(new Error((body && body.error) || `the upload failed (${xhr.status})`));
			};
			xhr.onerror = () => reject(new Error("the upload was interrupted"));
			xhr.onabort = () => reject(new Error("cancelled"));
			const fd = new FormData();
			fd.append("file", u.file, u.name);
			xhr.send(fd);
		});
	}

	// addFiles uploads files to the conversation shown.
	function addFiles(files) {
		const s = conv();
		if (!s || !files || !files.length) return;
		const id = item.id;
		const max = (ctx.session && ctx.session() && ctx.session().max_upload_bytes) || 0;
		for (const file of files) {
			const u = { file, name: file.name || "pasted file", size: file.size, status: "uploading", progress: 0, error: "" };
			s.uploads.push(u);
			if (max && file.size > max) {
				u.status = "error";
				u.error = "larger than the limit of " + formatSize(max);
				continue;
			}
			upload(id, u).then(
				(a) => {
					u.status = "done";
					u.attachment = a;
					u.xhr = null;
					if (item && item.id === id) drawUploads();
				},
				(err) => {
					u.status = "error";
					u.error = err.message;
					u.xhr = null;
					if (item && item.id === id) drawUploads();
				},
			);
		}
		drawUploads();
	}

	clip.addEventListener("click", () => fileInput.click());
	fileInput.addEventListener("change", () => {
		addFiles([...fileInput.files]);
		fileInput.value = "";
	});
	textarea.addEventListener("paste", (e) => {
		const files = e.clipboardData && [...e.clipboardData.files];
		if (files && files.length) {
			e.preventDefault();
			addFiles(files);
		}
	});

	// --- saved replies ------------------------------------------------

	async function savedReplies() {
		if (saved && Date.now() - saved.at < SAVED_TTL_MS) return saved.items;
		const ans = await ctx.api("GET", "/saved-replies");
		saved = { at: Date.now(), items: (ans && ans.items) || [] };
		return saved.items;
	}
	ctx.bus.on("savedreplies:changed", () => (saved = null));

	function closePicker() {
		pick = null;
		picker.hidden = true;
		textarea.setAttribute("aria-expanded", "false");
		textarea.removeAttribute("aria-activedescendant");
	}

	function drawPicker() {
		if (!pick) return;
		picker.hidden = false;
		textarea.setAttribute("aria-expanded", "true");
		if (pick.error) {
			picker.replaceChildren(h("li", { class: "empty", text: pick.error }));
			return;
		}
		if (!pick.items.length) {
			picker.replaceChildren(h("li", { class: "empty", text: pick.all ? "No saved reply matches “/" + pick.query + "”" : "No saved replies yet (admins add them)" }));
			textarea.removeAttribute("aria-activedescendant");
			return;
		}
		picker.replaceChildren(
			...pick.items.map((r, i) => {
				const li = h(
					"li",
					{ role: "option", id: "saved-reply-" + r.id, "aria-selected": String(i === pick.index), class: i === pick.index ? "active" : "" },
					h("span", { class: "shortcut", text: "/" + r.shortcut }),
					h("span", { class: "title", text: r.title }),
					h("span", { class: "preview", text: r.text }),
				);
				li.addEventListener("mousedown", (e) => {
					e.preventDefault();
					insertSaved(r);
				});
				return li;
			}),
		);
		textarea.setAttribute("aria-activedescendant", "saved-reply-" + pick.items[pick.index].id);
		picker.children[pick.index].scrollIntoView({ block: "nearest" });
	}

	async function updatePicker() {
		const before = textarea.value.slice(0, textarea.selectionStart);
		const m = /^\/([^\s/]*)$/.exec(before);
		if (!m) return closePicker();
		const query = m[1].toLowerCase();
		let all;
		try {
			all = await savedReplies();
		} catch (err) {
			pick = { items: [], index: 0, query, error: "Saved replies are unavailable: " + err.message };
			return drawPicker();
		}
		// The text may have changed while they loaded.
		if (textarea.value.slice(0, textarea.selectionStart) !== before) return;
		const starts = all.filter((r) => r.shortcut.toLowerCase().startsWith(query));
		const rest = all.filter((r) => !starts.includes(r) && (r.title.toLowerCase().includes(query) || r.shortcut.toLowerCase().includes(query)));
		const items = [...starts, ...rest];
		const keep = pick && pick.items[pick.index];
		const index = Math.max(0, keep ? items.indexOf(keep) : 0);
		pick = { items, index, query, all: all.length > 0 };
		drawPicker();
	}

	function insertSaved(r) {
		const caret = textarea.selectionStart;
		const rest = textarea.value.slice(caret);
		textarea.value = r.text + rest;
		textarea.selectionStart = textarea.selectionEnd = r.text.length;
		closePicker();
		autosize();
		saveDraft();
		textarea.focus();
	}

	// --- sending ------------------------------------------------------

	function say(text) {
		hint.textContent = text;
	}

	function send() {
		const s = conv();
		if (!s) return;
		const text = textarea.value.replace(/\s+$/, "");
		if (s.uploads.some((u) => u.status === "uploading")) return say("Wait for the files to finish uploading.");
		const done = s.uploads.filter((u) => u.status === "done");
		if (!text.trim() && !done.length) return;
		// The server counts the text in UTF-8 bytes (limits.max_message_bytes):
		// a text over it stays in the box, with the reason.
		const max = (ctx.session && ctx.session() && ctx.session().max_message_bytes) || 0;
		const n = new TextEncoder().encode(text).length;
		if (max && n > max) {
			return say("The message is too long (" + formatSize(n) + "; up to " + formatSize(max) + "). Please shorten it or split it.");
		}
		say("");
		typing(false);
		const r = replies.send(item.id, { text, channel: select.value, attachments: done.map((u) => u.attachment) });
		// The sent files go with the reply, and the failed ones' chips
		// have said their error: none stays for the next reply.
		s.uploads = s.uploads.filter((u) => u.status === "uploading");
		textarea.value = "";
		ctx.drafts.set(item.id, "");
		autosize();
		drawUploads();
		// A note is one: the next reply goes to the contact again.
		if (select.value === "note") {
			select.value = s.channel = "auto";
			refreshChannel();
		}
		if (hooks.onSent) hooks.onSent(r);
	}

	form.addEventListener("submit", (e) => {
		e.preventDefault();
		send();
	});

	textarea.addEventListener("keydown", (e) => {
		if (pick && !picker.hidden) {
			const n = pick.items.length;
			if (e.key === "ArrowDown" || e.key === "ArrowUp") {
				e.preventDefault();
				if (n) pick.index = (pick.index + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
				return drawPicker();
			}
			if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") {
				e.preventDefault();
				if (n) insertSaved(pick.items[pick.index]);
				else closePicker();
				return;
			}
			if (e.key === "Escape") {
				e.preventDefault();
				e.stopPropagation();
				return closePicker();
			}
		}
		if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.isComposing) {
			e.preventDefault();
			send();
		} else if (e.key === "Escape") {
			e.preventDefault();
			e.stopPropagation();
			textarea.blur();
			if (hooks.onEscape) hooks.onEscape();
		}
	});
	textarea.addEventListener("input", () => {
		autosize();
		clearTimeout(draftTimer);
		draftTimer = setTimeout(saveDraft, 300);
		if (textarea.value.trim()) typing(true);
		else typing(false);
		say("");
		updatePicker();
	});
	// A reload or a closed tab within the draft's debounce keeps it too.
	window.addEventListener("pagehide", saveDraft);
	textarea.addEventListener("blur", () => {
		saveDraft();
		// Let a click in the picker land first.
		setTimeout(() => {
			if (document.activeElement !== textarea) closePicker();
		}, 150);
	});

	// show makes the composer write in item's conversation (null: none).
	function show(next) {
		const same = item && next && item.id === next.id;
		if (!same) {
			if (item) saveDraft();
			typing(false);
			closePicker();
			say("");
		}
		item = next;
		form.hidden = !item;
		if (!item) return;
		if (!same) {
			textarea.value = ctx.drafts.get(item.id) || "";
			select.value = conv().channel;
			drawUploads();
			autosize();
		}
		refreshChannel();
	}

	return {
		el: form,
		show,
		// update gives a fresher item of the same conversation; the
		// reason is asked again when the contact's presence or email
		// changed.
		update(next) {
			if (!item || !next || next.id !== item.id) return;
			const now = next.contact || {};
			const stale = item.placeholder || asked.online !== !!now.online || asked.email !== (now.email || "");
			item = next;
			if (stale) refreshChannel();
		},
		refreshChannel,
		addFiles,
		focus() {
			textarea.focus();
		},
		textarea,
	};
}
