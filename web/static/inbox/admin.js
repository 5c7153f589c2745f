// admin.js: the admins' page at #/admin (issue 13 item 10): the agents
// (add, change role, disable and enable again: GET/POST /agents, PATCH
// /agents/{id}), the team's saved replies (GET/POST/PATCH/DELETE
// /saved-replies), the mail quarantine of the email channel (GET
// /quarantine, each mail's raw source to download) and the outgoing
// webhooks (webhooks.js, a module of its own). The nav shows the
// page to admins only, and the API refuses agents anyway. Deleting a
// conversation is in the thread's header, erasing a contact in the
// visitor panel. All user text is set as text.
import { h, icon, formatSize } from "/static/shared/dom.js";
import { timeEl } from "./when.js";
import { confirmDialog } from "./dialog.js";
import { field, formButtons, markInvalid } from "./form.js";
import { webhooks } from "./webhooks.js";

const I = {
	plus: "M12 5v14M5 12h14",
	download: "M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M7 10l5 5 5-5M12 15V3",
};

const SECTIONS = [
	{ key: "agents", label: "Agents" },
	{ key: "replies", label: "Saved replies" },
	{ key: "quarantine", label: "Mail quarantine" },
	{ key: "webhooks", label: "Webhooks" },
];

const PRESENCE = { online: "Online", idle: "Idle", offline: "Offline" };

// presenceLabel is a presence's dot and word.
function presenceLabel(p) {
	return [h("span", { class: `presence-dot ${p}`, "aria-hidden": "true" }), PRESENCE[p] || p];
}

// formError shows an API error in a form: on the field it names, and
// its text at the form's foot.
function formError(form, foot, err) {
	foot.textContent = err ? err.message : "";
	markInvalid(form, err && err.field);
}

export function mount(el, ctx) {
	el.classList.add("admin");
	let section = "agents";
	let shown = false;
	let agents = [];
	let replies = [];
	let editing = 0; // the saved reply being edited
	let adding = false; // the add agent form is open
	const hooks = webhooks(ctx);

	const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Admin" });
	const panel = h("section", { class: "admin-panel", role: "tabpanel" });
	const head = h("header", { class: "page-head" }, h("div", {}, h("h1", { text: "Admin" }), h("p", { class: "muted range", text: "Your team, its saved replies, the mail that could not be read and the webhooks." })), tabs);
	el.replaceChildren(h("div", { class: "page" }, head, panel));

	function renderTabs() {
		tabs.replaceChildren(
			...SECTIONS.map((s) =>
				h("button", {
					type: "button",
					role: "tab",
					id: `admin-tab-${s.key}`,
					class: `tab ${section === s.key ? "selected" : ""}`,
					"aria-selected": String(section === s.key),
					text: s.label,
					onclick: () => {
						section = s.key;
						show();
					},
				}),
			),
		);
		panel.setAttribute("aria-labelledby", `admin-tab-${section}`);
	}

	function show() {
		renderTabs();
		if (section !== "webhooks") hooks.hidden();
		if (!ctx.isAdmin()) {
			panel.replaceChildren(h("p", { class: "empty-state", text: "Only admins can see this page." }));
			return;
		}
		if (section === "agents") loadAgents();
		else if (section === "replies") loadReplies();
		else if (section === "webhooks") {
			panel.replaceChildren(hooks.el);
			hooks.shown();
		} else loadQuarantine();
	}

	// setPanel shows the section's nodes, leaving out the nulls.
	function setPanel(...kids) {
		panel.replaceChildren(...kids.filter(Boolean));
	}

	function failed(err) {
		panel.replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
	}

	// Agents.

	async function loadAgents() {
		try {
			const res = await ctx.api("GET", "/agents");
			agents = res.agents || res.items || [];
			if (section === "agents") renderAgents();
		} catch (err) {
			failed(err);
		}
	}

	async function patchAgent(a, body, msg) {
		msg.textContent = "";
		try {
			const updated = await ctx.api("PATCH", `/agents/${a.id}`, body);
			Object.assign(a, updated);
			renderAgents();
		} catch (err) {
			msg.textContent = err.message;
		}
	}

	function agentRow(a, msg) {
		const me = ctx.me()?.id === a.id;
		const role = h(
			"select",
			{ "aria-label": `Role of ${a.name}`, disabled: a.disabled || undefined },
			h("option", { value: "agent", text: "Agent", selected: a.role === "agent" || undefined }),
			h("option", { value: "admin", text: "Admin", selected: a.role === "admin" || undefined }),
		);
		// Refused (the last admin), the select goes back to what is stored.
		role.addEventListener("change", () => patchAgent(a, { role: role.value }, msg).finally(() => (role.value = a.role)));
		const toggle = me
			? null
			: a.disabled
			? h("button", { type: "button", class: "secondary small", text: "Enable", onclick: () => patchAgent(a, { disabled: false }, msg) })
			: h("button", {
					type: "button",
					class: "danger small",
					text: "Disable",
					onclick: () =>
						confirmDialog({
							title: `Disable ${a.name}?`,
							text: `${a.name} is logged out everywhere at once and cannot log in until an admin enables the account again. Their conversations and messages stay.`,
							confirm: "Disable",
							action: async () => {
								Object.assign(a, await ctx.api("PATCH", `/agents/${a.id}`, { disabled: true }));
								renderAgents();
							},
						}),
				});
		const presence = a.disabled ? "offline" : ctx.agents?.().get(a.id)?.presence || a.presence || "offline";
		return h(
			"tr",
			{ "data-agent": a.id, class: a.disabled ? "disabled" : "" },
			h(
				"th",
				{ scope: "row" },
				h(
					"div",
					{ class: "op" },
					h("span", { class: "avatar small", "aria-hidden": "true", text: (a.name || "?").charAt(0).toUpperCase() }),
					h("span", { class: "op-text" }, h("span", { class: "op-name", text: a.name }, me ? h("span", { class: "muted", text: " (you)" }) : null), h("span", { class: "op-email muted", text: a.email })),
				),
			),
			h("td", {}, role),
			h("td", { class: "presence" }, presenceLabel(presence)),
			h("td", {}, h("span", { class: `badge ${a.disabled ? "off" : "on"}`, text: a.disabled ? "Disabled" : "Active" })),
			h("td", { class: "actions" }, toggle),
		);
	}

	function addAgentForm() {
		const name = h("input", { name: "name", required: true, maxlength: "100", autocomplete: "off" });
		const email = h("input", { name: "email", type: "email", required: true, autocomplete: "off" });
		const password = h("input", { name: "password", type: "password", required: true, minlength: "10", maxlength: "72", autocomplete: "new-password" });
		const role = h("select", { name: "role" }, h("option", { value: "agent", text: "Agent" }), h("option", { value: "admin", text: "Admin" }));
		const foot = h("p", { class: "error", role: "alert" });
		const submit = h("button", { type: "submit", text: "Add agent" });
		const form = h(
			"form",
			{ class: "card-form", "aria-label": "Add agent" },
			h("h3", { text: "New agent" }),
			h("div", { class: "grid-2" }, field("Name", name, "What customers see"), field("Email", email), field("Password", password, "At least 10 characters; tell it to them yourself"), field("Role", role)),
			foot,
			formButtons(() => ((adding = false), renderAgents()), submit),
		);
		form.addEventListener("submit", async (e) => {
			e.preventDefault();
			submit.disabled = true;
			try {
				const a = await ctx.api("POST", "/agents", { name: name.value, email: email.value, password: password.value, role: role.value });
				agents.push(a);
				adding = false;
				renderAgents();
			} catch (err) {
				submit.disabled = false;
				formError(form, foot, err);
			}
		});
		queueMicrotask(() => name.focus());
		return form;
	}

	function renderAgents() {
		if (section !== "agents") return;
		const msg = h("p", { class: "error", role: "alert" });
		const sorted = [...agents].sort((a, b) => (a.disabled === b.disabled ? a.name.localeCompare(b.name) : a.disabled ? 1 : -1));
		const body = h("tbody", {}, sorted.map((a) => agentRow(a, msg)));
		const add = h("button", { type: "button", class: "add-agent", onclick: () => ((adding = true), renderAgents()) }, icon(I.plus), "Add agent");
		setPanel(
			h("div", { class: "toolbar" }, h("h2", { text: `Agents`, class: "section-title" }, h("span", { class: "count", text: String(agents.filter((a) => !a.disabled).length) })), h("span", { class: "spacer" }), adding ? null : add),
			adding ? addAgentForm() : null,
			msg,
			h(
				"div",
				{ class: "panel" },
				h("table", { class: "data agents" }, h("thead", {}, h("tr", {}, ["Agent", "Role", "Presence", "Status", ""].map((t) => h("th", { scope: "col", text: t })))), body),
			),
		);
	}

	// Saved replies.

	async function loadReplies() {
		try {
			const res = await ctx.api("GET", "/saved-replies");
			replies = res.items || [];
			if (section === "replies") renderReplies();
		} catch (err) {
			failed(err);
		}
	}

	function replyForm(r) {
		const shortcut = h("input", { name: "shortcut", required: true, maxlength: "32", pattern: "[a-z0-9_\\-]{1,32}", value: r?.shortcut || "", autocomplete: "off", spellcheck: "false" });
		const title = h("input", { name: "title", required: true, value: r?.title || "", autocomplete: "off" });
		const text = h("textarea", { name: "text", required: true, rows: "4" });
		text.value = r?.text || "";
		const foot = h("p", { class: "error", role: "alert" });
		const submit = h("button", { type: "submit", text: r ? "Save" : "Add saved reply" });
		const form = h(
			"form",
			{ class: "card-form", "aria-label": r ? `Edit /${r.shortcut}` : "New saved reply" },
			h("div", { class: "grid-2" }, field("Shortcut", shortcut, "Typed after / in the composer: a-z, 0-9, - and _"), field("Title", title)),
			field("Text", text),
			foot,
			formButtons(() => {
				editing = 0;
				renderReplies();
			}, submit),
		);
		form.addEventListener("submit", async (e) => {
			e.preventDefault();
			submit.disabled = true;
			const body = { shortcut: shortcut.value.trim(), title: title.value, text: text.value };
			try {
				if (r) Object.assign(r, await ctx.api("PATCH", `/saved-replies/${r.id}`, body));
				else replies.push(await ctx.api("POST", "/saved-replies", body));
				editing = 0;
				renderReplies();
			} catch (err) {
				submit.disabled = false;
				formError(form, foot, err);
			}
		});
		queueMicrotask(() => (r ? text : shortcut).focus());
		return form;
	}

	function renderReplies() {
		if (section !== "replies") return;
		const list = h("ul", { class: "replies-list" });
		for (const r of [...replies].sort((a, b) => a.shortcut.localeCompare(b.shortcut))) {
			if (editing === r.id) {
				list.append(h("li", { class: "editing" }, replyForm(r)));
				continue;
			}
			list.append(
				h(
					"li",
					{ "data-reply": r.id },
					h(
						"div",
						{ class: "reply-main" },
						h("div", { class: "reply-head" }, h("code", { class: "shortcut", text: `/${r.shortcut}` }), h("strong", { text: r.title }), r.updated_at ? h("span", { class: "muted small" }, "updated ", timeEl(h, r.updated_at)) : null),
						h("p", { class: "reply-text", text: r.text }),
					),
					h(
						"div",
						{ class: "actions" },
						h("button", {
							type: "button",
							class: "secondary small",
							text: "Edit",
							"aria-label": `Edit /${r.shortcut}`,
							onclick: () => {
								editing = r.id;
								renderReplies();
							},
						}),
						h("button", {
							type: "button",
							class: "danger small",
							text: "Delete",
							"aria-label": `Delete /${r.shortcut}`,
							onclick: () =>
								confirmDialog({
									title: `Delete /${r.shortcut}?`,
									text: `The saved reply "${r.title}" is removed for the whole team.`,
									confirm: "Delete",
									action: async () => {
										await ctx.api("DELETE", `/saved-replies/${r.id}`);
										replies = replies.filter((x) => x !== r);
										renderReplies();
									},
								}),
						}),
					),
				),
			);
		}
		const add = h(
			"button",
			{
				type: "button",
				onclick: () => {
					editing = -1;
					renderReplies();
				},
			},
			icon(I.plus),
			"Add saved reply",
		);
		setPanel(
			h("div", { class: "toolbar" }, h("h2", { class: "section-title", text: "Saved replies" }, h("span", { class: "count", text: String(replies.length) })), h("span", { class: "spacer" }), editing === -1 ? null : add),
			editing === -1 ? replyForm(null) : null,
			replies.length ? h("div", { class: "panel" }, list) : h("p", { class: "empty-state", text: "No saved replies yet. Agents insert them by typing / in the composer." }),
		);
	}

	// Quarantine.

	async function loadQuarantine() {
		try {
			const res = await ctx.api("GET", "/quarantine");
			if (section === "quarantine") renderQuarantine(res.emails || res.items || []);
		} catch (err) {
			failed(err);
		}
	}

	// renderQuarantine lists the quarantined mail; From and Subject show
	// when the server gives them (a mail that could not be parsed may
	// have neither).
	function renderQuarantine(mails) {
		const headers = mails.some((q) => q.from || q.subject);
		const body = h("tbody");
		for (const q of mails) {
			const from = q.from ? (typeof q.from === "string" ? q.from : [q.from.name, q.from.addr && `<${q.from.addr}>`].filter(Boolean).join(" ")) : "";
			body.append(
				h(
					"tr",
					{ "data-quarantine": q.id },
					h("td", { class: "nowrap" }, timeEl(h, q.created_at)),
					headers ? h("td", { class: "ellipsis", text: from || "—", title: from }) : null,
					headers ? h("td", { class: "ellipsis", text: q.subject || "—", title: q.subject || "" }) : null,
					h("td", { class: "reason", text: q.reason }),
					h("td", { class: "muted nowrap", text: `${q.mailbox || ""}${q.folder ? " / " + q.folder : ""}` }),
					h("td", { class: "num nowrap", text: formatSize(q.size || 0) }),
					h("td", { class: "actions" }, h("a", { class: "button secondary small", href: `/api/v1/quarantine/${q.id}/raw`, download: `quarantine-${q.id}.eml` }, icon(I.download), "Download raw")),
				),
			);
		}
		const cols = ["Date", headers && "From", headers && "Subject", "Reason", "Mailbox", "Size", ""].filter((c) => c !== false);
		setPanel(
			h("div", { class: "toolbar" }, h("h2", { class: "section-title", text: "Mail quarantine" }, h("span", { class: "count", text: String(mails.length) }))),
			h("p", { class: "muted intro", text: "Mail the support mailbox received but could not turn into a message: unreadable, too large or malformed. Download the raw source to look at it or import it by hand." }),
			mails.length
				? h("div", { class: "panel" }, h("table", { class: "data quarantine" }, h("thead", {}, h("tr", {}, cols.map((t) => h("th", { scope: "col", class: t === "Size" ? "num" : "", text: t })))), body))
				: h("p", { class: "empty-state", text: "The quarantine is empty." }),
		);
	}

	ctx.bus.on("route", (name) => {
		shown = name === "admin";
		if (shown) show();
		else hooks.hidden(); // a secret shown leaves with the page
	});
	ctx.bus.on("agent_presence", (p) => {
		const a = agents.find((x) => x.id === p.agent_id);
		if (!a || a.presence === p.presence) return;
		a.presence = p.presence;
		// In place: a select or form being used stays as it is.
		const cell = panel.querySelector(`tr[data-agent="${a.id}"] td.presence`);
		if (cell && !a.disabled) cell.replaceChildren(...presenceLabel(p.presence));
	});

	renderTabs();
	if (!el.hidden && el.offsetParent !== null) {
		shown = true;
		show();
	}
}
