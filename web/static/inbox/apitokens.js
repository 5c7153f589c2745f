// apitokens.js: the "API tokens" section of the profile (profile.js):
// the agent's personal tokens for scripts and integrations
// (docs/security.md "API tokens"). A form makes one (POST
// /profile/tokens, name and days); its value comes back that once and
// is shown until the agent dismisses it or leaves the page, with a Copy
// button and a curl line (secret.js). The list (GET /profile/tokens,
// newest first) says what each token is and did; Revoke asks first
// (DELETE /profile/tokens/{id}). Everything the server sends is set as
// text.
import { h } from "/static/shared/dom.js";
import { field, markInvalid, problem } from "./form.js";
import { confirmDialog } from "./dialog.js";
import { showSecret, hideSecret } from "./secret.js";
import { ago, dateTime, timeEl } from "./when.js";

// LIFETIMES are the expiries offered, in days; the server allows 1 to
// 365 (inbox.MaxAPITokenLifetime). The first is the default.
const LIFETIMES = [
	{ days: 30, label: "30 days" },
	{ days: 90, label: "90 days" },
	{ days: 365, label: "1 year" },
];

// state is "active", "expired" or "revoked", as of now.
function state(t, now = new Date()) {
	if (t.revoked_at) return "revoked";
	return new Date(t.expires_at) <= now ? "expired" : "active";
}

const BADGE = { active: "badge on", expired: "badge", revoked: "badge off" };
const STATE = { active: "Active", expired: "Expired", revoked: "Revoked" };

// apiTokens builds the section; the profile places el and calls shown()
// each time the page is shown and hidden() when another view is.
export function apiTokens(ctx) {
	let tokens = [];

	// The form.
	const name = h("input", { name: "name", required: true, maxlength: "100", autocomplete: "off", placeholder: "e.g. CRM sync" });
	const days = h(
		"select",
		{ name: "expires_in_days" },
		LIFETIMES.map((l) => h("option", { value: String(l.days), text: l.label })),
	);
	const expiryHint = h("span", { class: "field-hint" });
	const formStatus = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
	const create = h("button", { type: "submit", text: "Create token" });
	const reveal = h("div", { class: "token-reveal", hidden: true });
	const form = h(
		"form",
		{ class: "panel card-form", "aria-labelledby": "profile-tokens-title" },
		h("h2", { id: "profile-tokens-title", text: "API tokens" }),
		h("p", {
			class: "intro muted",
			text: "A token lets a script or an integration use the Microchat API as you, with your role, until it expires or you revoke it. Send it as a Bearer token in the Authorization header.",
		}),
		h("div", { class: "grid-2" }, field("Name", name, "What uses it, so that you know what to revoke."), h("label", { class: "field" }, h("span", { class: "field-label", text: "Expires after" }), days, expiryHint)),
		h("div", { class: "form-buttons" }, formStatus, create),
		reveal,
	);

	function hintExpiry() {
		const at = new Date(Date.now() + Number(days.value) * 86400e3);
		expiryHint.textContent = `On ${at.toLocaleDateString(undefined, { day: "numeric", month: "long", year: "numeric" })}.`;
	}
	days.addEventListener("change", hintExpiry);
	hintExpiry();

	function fail(err) {
		formStatus.className = "form-status error";
		formStatus.textContent = problem(err);
		// The form asks for days; an expires_at the server names is them.
		markInvalid(form, err && err.field === "expires_at" ? "expires_in_days" : err && err.field);
	}

	form.addEventListener("submit", async (e) => {
		e.preventDefault();
		create.disabled = true;
		formStatus.textContent = "";
		hideValue();
		try {
			const t = await ctx.api("POST", "/profile/tokens", { name: name.value, expires_in_days: Number(days.value) });
			markInvalid(form, null);
			name.value = "";
			showValue(t);
			const { token, ...listed } = t;
			tokens = [listed, ...tokens.filter((x) => x.id !== t.id)];
			renderList();
			load();
		} catch (err) {
			fail(err);
		} finally {
			create.disabled = false;
		}
	});

	// The value, once.
	function showValue(t) {
		const curl = `curl -H "Authorization: Bearer ${t.token}" ${location.origin}/api/v1/conversations`;
		showSecret(reveal, {
			title: `Your new token “${t.name}”`,
			warning: "Copy it now: it will not be shown again. Microchat keeps only a fingerprint of it; if you lose it, revoke it and create another.",
			value: t.token,
			label: `The token ${t.name}`,
			after: [h("p", { class: "muted small", text: "For example:" }), h("pre", { class: "token-curl" }, h("code", { text: curl }))],
		});
	}

	function hideValue() {
		hideSecret(reveal);
	}

	// The list.
	const listError = h("p", { class: "error", role: "alert" });
	const listPanel = h("div", { class: "token-list" });

	function revoke(t) {
		confirmDialog({
			title: `Revoke “${t.name}”?`,
			text: "Whatever uses this token is refused from its next request. This cannot be undone: to let it in again, create a new token.",
			confirm: "Revoke",
			action: () => ctx.api("DELETE", `/profile/tokens/${t.id}`).catch((err) => Promise.reject(new Error(problem(err)))),
		}).then((done) => {
			if (!done) return;
			t.revoked_at = t.revoked_at || new Date().toISOString();
			renderList();
			load();
		});
	}

	function row(t, now) {
		const s = state(t, now);
		return h(
			"tr",
			{ "data-token": t.id, class: s },
			h("th", { scope: "row", class: "token-name" }, h("span", { class: "ellipsis", title: t.name, text: t.name })),
			h("td", { class: "nowrap" }, timeEl(h, t.created_at, dateTime(t.created_at, now))),
			h("td", { class: "nowrap" }, timeEl(h, t.expires_at, dateTime(t.expires_at, now))),
			h("td", { class: "nowrap" }, t.last_used_at ? timeEl(h, t.last_used_at, ago(t.last_used_at, now)) : h("span", { class: "muted", text: "never" })),
			h("td", {}, h("span", { class: BADGE[s], text: STATE[s] })),
			h("td", { class: "actions" }, s === "active" ? h("button", { type: "button", class: "danger small", "aria-label": `Revoke ${t.name}`, text: "Revoke", onclick: () => revoke(t) }) : null),
		);
	}

	function renderList() {
		const now = new Date();
		// Newest first, as the server sends them; sorted again for the
		// one the form added.
		const sorted = [...tokens].sort((a, b) => new Date(b.created_at) - new Date(a.created_at) || b.id - a.id);
		listPanel.replaceChildren(
			sorted.length === 0
				? h("p", { class: "empty-state", text: "No tokens yet." })
				: h(
						"div",
						{ class: "panel" },
						h(
							"table",
							{ class: "data tokens", "aria-labelledby": "profile-tokens-title" },
							h("thead", {}, h("tr", {}, ["Name", "Created", "Expires", "Last used", "Status", ""].map((c) => h("th", { scope: "col", text: c })))),
							h("tbody", {}, sorted.map((t) => row(t, now))),
						),
				  ),
		);
	}

	// A load that an older one answers after is not shown.
	let loads = 0;
	async function load() {
		const n = ++loads;
		try {
			const res = await ctx.api("GET", "/profile/tokens");
			if (n !== loads) return;
			tokens = res.items || [];
			listError.textContent = "";
			renderList();
		} catch (err) {
			if (n === loads) listError.textContent = `The tokens could not be loaded. ${problem(err)}`;
		}
	}

	return {
		el: h("section", { class: "api-tokens", "aria-label": "API tokens" }, form, listError, listPanel),
		shown() {
			hintExpiry();
			load();
		},
		hidden: hideValue,
	};
}
