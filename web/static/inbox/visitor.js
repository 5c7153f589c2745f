// visitor.js: the visitor panel beside the conversation (spec rule 11,
// issue 13 item 7): who the contact is (name, email, phone, ID), where
// (a world map drawn in the page with their country marked, their IP
// address), with what (browser and version, operating system), when
// (first and last seen, live presence), the pages they viewed, newest
// first, and their other conversations. Admins can erase the contact
// (spec rule 12). The pane collapses to a strip, remembered per browser.
// All user text is set as text (h(), textContent).
import { h, icon } from "/static/shared/dom.js";
import { worldMap, countryName, onMap } from "./worldmap.js";
import { ago, timeEl } from "./when.js";
import { confirmDialog } from "./dialog.js";
import { envelope } from "./emailview.js";

// Line icons (Feather, MIT).
const I = {
	mail: "M4 4h16c1.1 0 2 .9 2 2v12c0 1.1-.9 2-2 2H4c-1.1 0-2-.9-2-2V6c0-1.1.9-2 2-2zM22 6l-10 7L2 6",
	phone: "M22 16.9v3a2 2 0 0 1-2.2 2 19.8 19.8 0 0 1-8.6-3.1 19.5 19.5 0 0 1-6-6A19.8 19.8 0 0 1 2.1 4.2 2 2 0 0 1 4.1 2h3a2 2 0 0 1 2 1.7c.1 1 .4 1.9.7 2.8a2 2 0 0 1-.5 2.1L8 9.9a16 16 0 0 0 6 6l1.3-1.3a2 2 0 0 1 2.1-.4c.9.3 1.8.6 2.8.7a2 2 0 0 1 1.7 2z",
	id: "M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2M12 3a4 4 0 1 0 0 8 4 4 0 0 0 0-8z",
	globe: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM2 12h20M12 2a15.3 15.3 0 0 1 4 10 15.3 15.3 0 0 1-4 10 15.3 15.3 0 0 1-4-10 15.3 15.3 0 0 1 4-10z",
	monitor: "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zM8 21h8M12 17v4",
	browser: "M4 3h16a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zM2 8h20M6 5.5h.01M9 5.5h.01",
	clock: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM12 6v6l4 2",
	pin: "M21 10c0 7-9 13-9 13s-9-6-9-13a9 9 0 0 1 18 0zM12 7a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
	collapse: "M13 17l5-5-5-5M6 17l5-5-5-5",
	expand: "M11 17l-5-5 5-5M18 17l-5-5 5-5",
	trash: "M3 6h18M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6M10 11v6M14 11v6M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2",
};

// How many pages show before "Show all".
const PAGES_SHOWN = 8;

// While an online contact is shown, their details are read again this
// often (pages viewed have no event of their own).
const REFRESH_MS = 20000;

const COLLAPSED_KEY = "microchat.visitor.collapsed";

function displayName(c) {
	return (c && (c.name || c.email)) || "Visitor";
}

function initial(c) {
	return displayName(c).trim().charAt(0).toUpperCase() || "?";
}

// safeURL returns an http(s) URL's href, or null.
function safeURL(u) {
	try {
		const url = new URL(u);
		return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
	} catch {
		return null;
	}
}

// shortURL is a URL without its scheme, for people.
function shortURL(u) {
	try {
		const url = new URL(u);
		return url.host + (url.pathname === "/" ? "" : url.pathname) + url.search;
	} catch {
		return u;
	}
}

// row is one fact of a definition list: an icon, a label, a value (text
// or nodes); nothing when the value is empty.
function row(d, label, value, extra) {
	if (value == null || value === "" || (Array.isArray(value) && !value.length)) return null;
	return h(
		"div",
		{ class: "vp-row" },
		h("dt", { title: label }, icon(d), h("span", { text: label })),
		h("dd", extra || {}, value),
	);
}

export function mount(el, ctx) {
	el.classList.add("vp");
	const toggle = h("button", { type: "button", class: "vp-toggle icon-button", "aria-controls": "vp-body" });
	const title = h("h2", { class: "vp-title", text: "Visitor" });
	const body = h("div", { class: "vp-body", id: "vp-body" });
	el.replaceChildren(h("div", { class: "vp-head" }, title, toggle), body);

	function setCollapsed(on) {
		el.classList.toggle("vp-collapsed", on);
		toggle.setAttribute("aria-expanded", String(!on));
		const label = on ? "Show visitor details" : "Hide visitor details";
		toggle.setAttribute("aria-label", label);
		toggle.title = label;
		toggle.replaceChildren(icon(on ? I.expand : I.collapse));
		body.hidden = on;
		try {
			localStorage.setItem(COLLAPSED_KEY, on ? "1" : "");
		} catch {}
	}
	let collapsed = false;
	try {
		collapsed = localStorage.getItem(COLLAPSED_KEY) === "1";
	} catch {}
	setCollapsed(collapsed);
	toggle.addEventListener("click", () => setCollapsed(!el.classList.contains("vp-collapsed")));

	let convId = 0; // the conversation shown
	let contact = null; // the ContactDetail shown
	let loading = 0; // guards against answers that come after a newer request
	let showAllPages = false;
	let timer = 0;

	function empty(text) {
		contact = null;
		el.removeAttribute("data-contact");
		body.replaceChildren(h("p", { class: "vp-empty", text }));
	}

	// load shows the contact of the conversation shown now; quiet keeps
	// what is on screen until the answer comes.
	async function load(quiet) {
		const my = ++loading;
		const id = convId;
		clearTimeout(timer);
		if (!id) {
			empty("Open a conversation to see who you are talking to.");
			return;
		}
		if (!quiet) body.replaceChildren(h("p", { class: "vp-empty", text: "Loading…" }));
		try {
			let item = ctx.conversation(id);
			if (!item) {
				item = await ctx.api("GET", `/conversations/${id}`);
				if (my !== loading) return;
				ctx.upsert?.(item);
			}
			const cid = item.contact_id ?? item.contact?.id;
			const detail = await ctx.api("GET", `/contacts/${cid}`);
			if (my !== loading) return;
			if (!contact || contact.id !== detail.id) showAllPages = false;
			contact = detail;
			render();
		} catch (err) {
			if (my !== loading) return;
			if (err.status === 404) empty("This conversation or its contact no longer exists.");
			else if (!quiet) body.replaceChildren(h("p", { class: "vp-empty error", role: "alert", text: err.message }));
		}
		schedule();
	}

	function schedule() {
		clearTimeout(timer);
		if (contact && contact.online) {
			timer = setTimeout(() => {
				if (document.visibilityState === "visible") load(true);
				else schedule();
			}, REFRESH_MS);
		}
	}

	function presence() {
		const c = contact;
		const online = !!c.online;
		return h(
			"p",
			{ class: `vp-presence ${online ? "online" : "offline"}` },
			h("span", { class: "dot", "aria-hidden": "true" }),
			online ? "Online now" : c.last_seen_at ? `Offline · seen ${ago(c.last_seen_at)}` : "Offline",
		);
	}

	function identity() {
		const c = contact;
		const ids = [h("span", { class: "mono", text: `#${c.id}` })];
		if (c.external_id) ids.push(h("span", { class: "vp-ext", text: ` · external ${c.external_id}` }));
		return h(
			"section",
			{ class: "vp-card vp-identity", "aria-label": "Contact" },
			h(
				"div",
				{ class: "vp-who" },
				h("span", { class: "avatar", "aria-hidden": "true", text: initial(c) }),
				h("div", { class: "vp-who-text" }, h("h3", { class: "vp-name", text: displayName(c) }), presence()),
			),
			h(
				"dl",
				{ class: "vp-facts" },
				row(I.mail, "Email", c.email ? h("a", { href: `mailto:${c.email}`, text: c.email }) : "", { class: "vp-email" }),
				row(I.phone, "Phone", c.phone || "", { class: "vp-phone" }),
				row(I.id, "ID", ids, { class: "vp-id" }),
			),
		);
	}

	function location() {
		const c = contact;
		const code = (c.country || "").toUpperCase();
		const name = code ? countryName(code) : "";
		const caption = code
			? h("p", { class: "vp-country" }, icon(I.pin), h("strong", { text: name }), h("span", { class: "muted", text: ` ${code}` }), onMap(code) ? null : h("span", { class: "muted", text: " (not on the map)" }))
			: h("p", { class: "vp-country muted", text: "Location unknown" });
		return h("section", { class: "vp-card vp-location", "aria-label": "Location" }, h("div", { class: "vp-map" }, worldMap(code)), caption);
	}

	function technology() {
		const c = contact;
		const browser = [c.browser, c.browser_version].filter(Boolean).join(" ");
		const facts = [
			row(I.browser, "Browser", browser, { class: "vp-browser" }),
			row(I.monitor, "OS", c.os || "", { class: "vp-os" }),
			row(I.globe, "IP", c.ip ? h("span", { class: "mono", text: c.ip }) : "", { class: "vp-ip" }),
			row(I.clock, "First seen", timeEl(h, c.created_at), { class: "vp-first-seen" }),
			row(I.clock, "Last seen", c.online ? "Now" : c.last_seen_at ? timeEl(h, c.last_seen_at) : "", { class: "vp-last-seen" }),
		];
		return h("section", { class: "vp-card", "aria-label": "Visit" }, h("h4", { text: "Visit" }), h("dl", { class: "vp-facts" }, facts));
	}

	function pages() {
		const views = contact.page_views || [];
		const list = h("ol", { class: "vp-pages" });
		const shown = showAllPages ? views : views.slice(0, PAGES_SHOWN);
		for (const p of shown) {
			const href = safeURL(p.url);
			const label = p.title || shortURL(p.url);
			list.append(
				h(
					"li",
					{},
					h(
						"div",
						{ class: "vp-page-text" },
						href
							? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", class: "vp-page-title", title: p.url, text: label })
							: h("span", { class: "vp-page-title", text: label }),
						h("span", { class: "vp-page-url", text: shortURL(p.url) }),
					),
					timeEl(h, p.viewed_at),
				),
			);
		}
		const section = h(
			"section",
			{ class: "vp-card", "aria-label": "Pages viewed" },
			h("h4", {}, "Pages viewed ", h("span", { class: "count", text: String(views.length) })),
		);
		if (!views.length) section.append(h("p", { class: "muted small", text: "No pages recorded." }));
		else section.append(list);
		if (views.length > PAGES_SHOWN) {
			section.append(
				h("button", {
					type: "button",
					class: "link",
					text: showAllPages ? "Show fewer" : `Show all ${views.length}`,
					onclick: () => {
						showAllPages = !showAllPages;
						render();
					},
				}),
			);
		}
		return section;
	}

	function conversations() {
		const others = (contact.conversations || []).filter((c) => c.id !== convId);
		const section = h(
			"section",
			{ class: "vp-card", "aria-label": "Other conversations" },
			h("h4", {}, "Other conversations ", h("span", { class: "count", text: String(others.length) })),
		);
		if (!others.length) {
			section.append(h("p", { class: "muted small", text: "None." }));
			return section;
		}
		const list = h("ul", { class: "vp-convs" });
		for (const c of others) {
			const label = c.subject || (c.channel === "email" ? "Email" : "Chat");
			list.append(
				h(
					"li",
					{},
					h(
						"a",
						{
							href: `#/c/${c.id}`,
							"data-conversation": c.id,
							onclick: (e) => {
								e.preventDefault();
								ctx.open(c.id);
							},
						},
						h("span", { class: "vp-conv-title", text: label }),
						h("span", { class: "vp-conv-meta" }, c.has_email ? envelope() : null, `#${c.id} · `, timeEl(h, c.last_activity_at)),
					),
					h("span", { class: `badge ${c.status}`, text: c.status === "open" ? "Open" : "Closed" }),
				),
			);
		}
		section.append(list);
		return section;
	}

	function admin() {
		if (!ctx.isAdmin()) return null;
		const c = contact;
		const n = (c.conversations || []).length;
		const erase = h("button", { type: "button", class: "danger vp-erase" }, icon(I.trash), "Erase contact");
		erase.addEventListener("click", async () => {
			const gone = await confirmDialog({
				title: `Erase ${displayName(c)}?`,
				text: `The contact, ${n === 1 ? "their conversation" : `their ${n} conversations`} with every message and attachment, and the pages they viewed are deleted for good. This cannot be undone.`,
				confirm: "Erase contact",
				action: () => ctx.api("DELETE", `/contacts/${c.id}`),
			});
			if (gone && contact && contact.id === c.id) {
				empty("The contact was erased.");
				if ((c.conversations || []).some((x) => x.id === ctx.current())) ctx.open(0);
			}
		});
		return h("section", { class: "vp-admin" }, erase);
	}

	function render() {
		el.dataset.contact = String(contact.id);
		body.replaceChildren(...[identity(), location(), technology(), pages(), conversations(), admin()].filter(Boolean));
	}

	ctx.bus.on("open", (id) => {
		id = Number(id) || 0;
		if (id === convId) return;
		const sameContact = contact && (contact.conversations || []).some((c) => c.id === id);
		convId = id;
		load(sameContact);
	});
	ctx.bus.on("contact_presence", (f) => {
		if (!contact || f.contact_id !== contact.id) return;
		contact.online = !!f.online;
		if (!f.online) contact.last_seen_at = new Date().toISOString();
		render();
		// Coming back may bring new pages, a new browser or address.
		if (f.online) load(true);
		else schedule();
	});
	ctx.bus.on("event", ({ ev }) => {
		if (!contact || !ev) return;
		const mine = (contact.conversations || []).some((c) => c.id === ev.conversation_id);
		if (ev.type === "conversation_created" && ev.data?.contact?.id === contact.id) load(true);
		else if (mine && (ev.type === "conversation_deleted" || ev.type === "closed" || (ev.type === "message_added" && ev.data?.reopened))) load(true);
	});
	ctx.bus.on("resync", (id) => {
		if (!id || id === convId) load(true);
	});
	ctx.bus.on("route", (name) => {
		if (name !== "conversations") clearTimeout(timer);
		else schedule();
	});

	convId = Number(ctx.current()) || 0;
	load(false);
}
