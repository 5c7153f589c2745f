// webhooks.js: the "Webhooks" section of the admins' page (admin.js),
// issue 15. The list (GET /webhooks) says where each webhook sends, what
// it wants, whether it is on, what it still owes and how its last
// deliveries went. An admin adds one (POST /webhooks) and sees its
// secret once, with a Copy button (secret.js); turns it off and on,
// changes its name, URL and events (PATCH /webhooks/{id}); rotates its
// secret (POST .../rotate: the new one shown once, the old one signing
// beside it for a day); deletes it after a confirmation; and opens its
// failed deliveries (GET .../deliveries) to replay one or all. A webhook
// of the config file is shown read-only: it is changed in the file.
// Everything the server sends, a receiver's answer above all, is set as
// text.
import { h, icon } from "/static/shared/dom.js";
import { field, formButtons, markInvalid, problem } from "./form.js";
import { confirmDialog } from "./dialog.js";
import { showSecret, hideSecret } from "./secret.js";
import { ago, timeEl } from "./when.js";

// EVENTS are the webhook event types (inbox.HookEvents), in their order,
// with what each tells.
const EVENTS = [
	["conversation.created", "A conversation started"],
	["conversation.assigned", "An agent joined a conversation"],
	["conversation.closed", "The last agent left and the conversation closed"],
	["conversation.reopened", "A closed conversation is open again"],
	["message.created", "A message, a reply or a private note was added"],
	["message.failed", "An email reply could not be delivered"],
	["rating.created", "A contact rated a conversation"],
	["contact.updated", "A contact's name, email or phone changed"],
	["contact.erased", "An admin erased a contact"],
];

// OVERLAP_HOURS is how long a rotated secret keeps signing beside the
// new one: the server's default for POST .../rotate.
const OVERLAP_HOURS = 24;

// PAGE is how many failed deliveries one request lists.
const PAGE = 50;

const PLUS = "M12 5v14M5 12h14";

// eventChoices is a checkbox for each event type, those of selected
// checked; each is named "events", the API's field.
function eventChoices(selected) {
	return h(
		"fieldset",
		{ class: "hook-events-choice" },
		h("legend", { class: "field-label", text: "Events" }),
		EVENTS.map(([e, what]) =>
			h("label", { class: "check" }, h("input", { type: "checkbox", name: "events", value: e, checked: selected.includes(e) || undefined }), h("code", { text: e }), h("span", { class: "muted", text: what })),
		),
	);
}

function checkedEvents(form) {
	return [...form.querySelectorAll('input[name="events"]:checked')].map((i) => i.value);
}

// lastDelivery says how the webhook's last deliveries went: when one
// last got through, when one last failed and why.
function lastDelivery(w, now) {
	const out = [];
	if (w.last_success_at) out.push(h("div", { class: "hook-ok" }, "Delivered ", timeEl(h, w.last_success_at, ago(w.last_success_at, now))));
	if (w.last_failure_at)
		out.push(h("div", { class: "hook-fail" }, "Failed ", timeEl(h, w.last_failure_at, ago(w.last_failure_at, now)), w.last_error ? h("span", { class: "hook-error", text: `: ${w.last_error}` }) : null));
	return out.length ? out : [h("span", { class: "muted", text: "Nothing sent yet" })];
}

// webhooks builds the section; admin.js places el and calls shown()
// each time the section is shown and hidden() when it is left.
export function webhooks(ctx) {
	let hooks = null; // until the first load
	let adding = false;
	let editing = 0; // the webhook whose form is open
	let opened = null; // the webhook whose failed deliveries are shown
	let deliveries = null; // until loaded
	let older = false; // more failed deliveries than listed
	let active = false;

	const reveal = h("div", { class: "token-reveal", hidden: true });
	const msg = h("p", { class: "error", role: "alert" });
	const note = h("p", { class: "form-status hook-note", role: "status", "aria-live": "polite" });
	const body = h("div", { class: "webhooks-body" });
	const el = h("section", { class: "webhooks", "aria-label": "Webhooks" }, body);

	function say(text) {
		msg.textContent = "";
		note.textContent = text;
	}

	function fail(err) {
		note.textContent = "";
		msg.textContent = problem(err);
	}

	// A load that an older one answers after is not shown.
	let loads = 0;
	async function load() {
		const n = ++loads;
		try {
			const res = await ctx.api("GET", "/webhooks");
			if (n !== loads || !active) return;
			hooks = res.webhooks || [];
			if (opened) opened = hooks.find((w) => w.id === opened.id) || null; // with its new counts
			render();
		} catch (err) {
			if (n === loads) fail(err);
		}
	}

	// setBody shows the section's nodes, leaving out the nulls.
	function setBody(...kids) {
		body.replaceChildren(...kids.filter(Boolean));
	}

	function render() {
		if (!active || !hooks) return;
		if (opened) renderDeliveries();
		else renderList();
	}

	// The list.

	function hookForm(w) {
		const name = h("input", { name: "name", required: true, maxlength: "100", autocomplete: "off", value: w?.name || "" });
		const url = h("input", { name: "url", type: "url", required: true, maxlength: "2048", autocomplete: "off", spellcheck: "false", placeholder: "https://", value: w?.url || "" });
		const enabled = h("input", { type: "checkbox", name: "enabled", checked: true });
		const foot = h("p", { class: "error", role: "alert" });
		const submit = h("button", { type: "submit", text: w ? "Save" : "Add webhook" });
		const form = h(
			"form",
			{ class: "card-form hook-form", "aria-label": w ? `Edit ${w.name}` : "New webhook" },
			w ? null : h("h3", { text: "New webhook" }),
			h("div", { class: "grid-2" }, field("Name", name, "What it feeds, e.g. CRM"), field("URL", url, "Microchat POSTs each event here as signed JSON")),
			eventChoices(w ? w.events : []),
			w ? null : h("label", { class: "check" }, enabled, h("span", { text: "Enabled" })),
			foot,
			formButtons(() => {
				adding = false;
				editing = 0;
				render();
			}, submit),
		);
		form.addEventListener("submit", async (e) => {
			e.preventDefault();
			submit.disabled = true;
			foot.textContent = "";
			const req = { name: name.value, url: url.value.trim(), events: checkedEvents(form) };
			try {
				if (w) {
					const res = await ctx.api("PATCH", `/webhooks/${w.id}`, req);
					Object.assign(w, res.webhook);
					editing = 0;
					say(`${w.name} is saved.`);
				} else {
					const res = await ctx.api("POST", "/webhooks", { ...req, enabled: enabled.checked });
					hooks.push(res.webhook);
					adding = false;
					say("");
					showSecret(reveal, {
						title: `The secret of “${res.webhook.name}”`,
						warning: "Copy it now to the receiver, which checks each delivery's signature with it: it will not be shown again. To get another, rotate it.",
						value: res.secret,
						label: `The secret of ${res.webhook.name}`,
					});
				}
				render();
				load();
			} catch (err) {
				submit.disabled = false;
				foot.textContent = problem(err);
				markInvalid(form, err && err.field);
			}
		});
		queueMicrotask(() => (w ? url : name).focus());
		return form;
	}

	async function patch(w, change, done) {
		try {
			const res = await ctx.api("PATCH", `/webhooks/${w.id}`, change);
			Object.assign(w, res.webhook);
			say(done);
			render();
		} catch (err) {
			fail(err);
		}
	}

	function rotate(w) {
		let secret = "";
		confirmDialog({
			title: `Rotate the secret of ${w.name}?`,
			text: `A new secret signs every delivery from now on. The old one keeps signing beside it for ${OVERLAP_HOURS} hours, so that the receiver can switch to the new one without refusing a delivery; then it stops.`,
			confirm: "Rotate",
			danger: false,
			action: async () => {
				try {
					secret = (await ctx.api("POST", `/webhooks/${w.id}/rotate`, { overlap_hours: OVERLAP_HOURS })).secret;
				} catch (err) {
					throw new Error(problem(err));
				}
			},
		}).then((done) => {
			if (!done) return;
			say("");
			showSecret(reveal, {
				title: `The new secret of “${w.name}”`,
				warning: `Copy it now to the receiver: it will not be shown again. The old secret keeps signing deliveries beside it for ${OVERLAP_HOURS} hours.`,
				value: secret,
				label: `The new secret of ${w.name}`,
			});
			load();
		});
	}

	function remove(w) {
		confirmDialog({
			title: `Delete ${w.name}?`,
			text: `Microchat stops sending to ${w.url} at once, and the deliveries it still owes this webhook (${w.pending} pending, ${w.failed} failed) are dropped. This cannot be undone.`,
			confirm: "Delete",
			action: () => ctx.api("DELETE", `/webhooks/${w.id}`).catch((err) => Promise.reject(new Error(problem(err)))),
		}).then((done) => {
			if (!done) return;
			hooks = hooks.filter((x) => x !== w);
			say(`${w.name} is deleted.`);
			render();
			load();
		});
	}

	function actions(w) {
		const failed = h("button", {
			type: "button",
			class: "secondary small",
			"aria-label": `Failed deliveries of ${w.name}`,
			text: `Failed deliveries (${w.failed})`,
			onclick: () => openDeliveries(w),
		});
		if (w.from_config) return [failed];
		return [
			w.enabled
				? h("button", { type: "button", class: "secondary small", "aria-label": `Disable ${w.name}`, text: "Disable", onclick: () => patch(w, { enabled: false }, `${w.name} is disabled: it is sent nothing new.`) })
				: h("button", { type: "button", class: "secondary small", "aria-label": `Enable ${w.name}`, text: "Enable", onclick: () => patch(w, { enabled: true }, `${w.name} is enabled.`) }),
			h("button", {
				type: "button",
				class: "secondary small",
				"aria-label": `Edit ${w.name}`,
				text: "Edit",
				onclick: () => {
					editing = w.id;
					adding = false;
					render();
				},
			}),
			h("button", { type: "button", class: "secondary small", "aria-label": `Rotate the secret of ${w.name}`, text: "Rotate secret", onclick: () => rotate(w) }),
			failed,
			h("button", { type: "button", class: "danger small", "aria-label": `Delete ${w.name}`, text: "Delete", onclick: () => remove(w) }),
		];
	}

	function row(w, now) {
		return h(
			"tr",
			{ "data-webhook": w.id, class: w.enabled ? "" : "disabled" },
			h(
				"th",
				{ scope: "row", class: "hook-name" },
				h("div", {}, h("span", { class: "hook-title", text: w.name }), w.from_config ? h("span", { class: "badge", title: "Listed in the config file: change it there.", text: "From config file" }) : null),
				h("div", { class: "hook-url muted", title: w.url, text: w.url }),
			),
			h("td", { class: "hook-events" }, w.events.map((e) => h("code", { text: e }))),
			h("td", {}, h("span", { class: `badge ${w.enabled ? "on" : "off"}`, text: w.enabled ? "Enabled" : "Disabled" })),
			h("td", { class: "nowrap hook-counts" }, h("div", { text: `${w.pending} pending` }), h("div", { class: w.failed ? "hook-fail" : "", text: `${w.failed} failed` })),
			h("td", { class: "hook-last" }, lastDelivery(w, now)),
			h("td", { class: "actions" }, actions(w)),
		);
	}

	function renderList() {
		const now = new Date();
		const tbody = h("tbody");
		for (const w of hooks) {
			tbody.append(row(w, now));
			if (editing === w.id && !w.from_config) tbody.append(h("tr", { class: "editing" }, h("td", { colspan: "6" }, hookForm(w))));
		}
		const add = h(
			"button",
			{
				type: "button",
				onclick: () => {
					adding = true;
					editing = 0;
					render();
				},
			},
			icon(PLUS),
			"Add webhook",
		);
		setBody(
			h("div", { class: "toolbar" }, h("h2", { class: "section-title", text: "Webhooks" }, h("span", { class: "count", text: String(hooks.length) })), h("span", { class: "spacer" }), adding ? null : add),
			h("p", {
				class: "muted intro",
				text: "Microchat POSTs each event a webhook wants to its URL as JSON, signed with the webhook's secret (Standard Webhooks), in order within each conversation. A delivery that fails is tried again, then kept here to replay.",
			}),
			adding ? hookForm(null) : null,
			reveal,
			note,
			msg,
			hooks.length
				? h(
						"div",
						{ class: "panel" },
						h(
							"table",
							{ class: "data webhooks" },
							h("thead", {}, h("tr", {}, ["Webhook", "Events", "Status", "Deliveries", "Last delivery", ""].map((t) => h("th", { scope: "col", text: t })))),
							tbody,
						),
				  )
				: h("p", { class: "empty-state", text: "No webhooks yet. Add one to send conversations, messages and ratings to another system as they happen." }),
		);
	}

	// The failed deliveries of one webhook.

	function openDeliveries(w) {
		opened = w;
		deliveries = null;
		older = false;
		say("");
		hideSecret(reveal);
		render();
		loadDeliveries(false);
	}

	let dloads = 0;
	async function loadDeliveries(more) {
		const n = ++dloads;
		const id = opened.id;
		const before = more && deliveries?.length ? `&before=${deliveries[deliveries.length - 1].id}` : "";
		try {
			const res = await ctx.api("GET", `/webhooks/${id}/deliveries?state=failed&limit=${PAGE}${before}`);
			if (n !== dloads || opened?.id !== id) return;
			const got = res.deliveries || [];
			deliveries = more ? (deliveries || []).concat(got) : got;
			older = got.length === PAGE;
			render();
		} catch (err) {
			if (n === dloads) fail(err);
		}
	}

	async function replay(path, done) {
		try {
			const res = await ctx.api("POST", `/webhooks/${opened.id}/deliveries${path}`);
			say(done(res.replayed));
			await loadDeliveries(false);
			load();
		} catch (err) {
			fail(err);
		}
	}

	function deliveryRow(d) {
		return h(
			"tr",
			{ "data-delivery": d.id },
			h("td", {}, h("code", { text: d.type })),
			h("td", { class: "nowrap" }, timeEl(h, d.created_at)),
			h("td", { class: "num" }, String(d.attempts)),
			h("td", { class: "nowrap" }, d.last_at ? timeEl(h, d.last_at) : h("span", { class: "muted", text: "—" })),
			h("td", { class: "num", text: d.last_status ? String(d.last_status) : "no answer" }),
			h("td", { class: "hook-error", text: d.last_error || "" }),
			h("td", {}, d.last_body ? h("pre", { class: "hook-body", text: d.last_body }) : h("span", { class: "muted", text: "—" })),
			h(
				"td",
				{ class: "actions" },
				h("button", { type: "button", class: "secondary small", "aria-label": `Replay delivery ${d.id}`, text: "Replay", onclick: () => replay(`/${d.id}/replay`, () => `Delivery ${d.id} will be sent again now.`) }),
			),
		);
	}

	function renderDeliveries() {
		const w = opened;
		const back = h("button", {
			type: "button",
			class: "secondary small",
			text: "All webhooks",
			onclick: () => {
				opened = null;
				say("");
				render();
			},
		});
		const all = h("button", {
			type: "button",
			text: "Replay all",
			disabled: !deliveries?.length || undefined,
			onclick: () => replay("/replay", (n) => (n === 1 ? "1 delivery will be sent again now." : `${n} deliveries will be sent again now.`)),
		});
		setBody(
			h("div", { class: "toolbar" }, back, h("h2", { class: "section-title", text: `Failed deliveries of ${w.name}` }, h("span", { class: "count", text: String(w.failed) })), h("span", { class: "spacer" }), all),
			h("p", {
				class: "muted intro",
				text: `Deliveries to ${w.url} that Microchat gave up on after its retries, the newest first, with the receiver's last answer. Replay sends one again with the same webhook-id, so that the receiver can tell a delivery it already has.`,
			}),
			note,
			msg,
			deliveries === null
				? h("p", { class: "muted", text: "Loading…" })
				: deliveries.length
				? h(
						"div",
						{ class: "panel" },
						h(
							"table",
							{ class: "data deliveries" },
							h("thead", {}, h("tr", {}, ["Event", "Made", "Attempts", "Last attempt", "Status", "Error", "Answer", ""].map((t) => h("th", { scope: "col", class: t === "Attempts" || t === "Status" ? "num" : "", text: t })))),
							h("tbody", {}, deliveries.map(deliveryRow)),
						),
				  )
				: h("p", { class: "empty-state", text: "No failed deliveries." }),
			older ? h("div", { class: "form-buttons" }, h("button", { type: "button", class: "secondary", text: "Show older", onclick: () => loadDeliveries(true) })) : null,
		);
	}

	return {
		el,
		shown() {
			active = true;
			render(); // what was loaded last, until load answers
			load();
		},
		// hidden forgets a secret shown and closes the forms.
		hidden() {
			active = false;
			hideSecret(reveal);
			adding = false;
			editing = 0;
			opened = null;
			say("");
		},
	};
}
