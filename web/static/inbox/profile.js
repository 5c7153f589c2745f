// profile.js: the agent's own settings at #/profile (issue 13 item 1):
// the display name customers see (PATCH /agents/me {name}), the password
// (POST /auth/password; the other sessions end), which notifications
// come (all, mine, off) and the sound, with a test (PATCH /agents/me
// {settings}), and the agent's API tokens (apitokens.js). A saved agent
// is announced on the bus as "me", so that the shell and the notifier
// use it at once. All user text is set as text.
import { h } from "/static/shared/dom.js";
import { field, markInvalid } from "./form.js";
import { apiTokens } from "./apitokens.js";

const NOTIFICATIONS = [
	{ value: "all", label: "All", text: "New conversations, new messages in Unassigned ones, and messages in conversations I joined." },
	{ value: "mine", label: "Mine only", text: "Only messages in conversations I joined." },
	{ value: "off", label: "Off", text: "No notifications and no sound." },
];

// status is a line under a form that says it saved, or why not.
function status() {
	const el = h("p", { class: "form-status", role: "status", "aria-live": "polite" });
	let t = 0;
	el.ok = (text) => {
		el.className = "form-status success";
		el.textContent = text;
		clearTimeout(t);
		t = setTimeout(() => (el.textContent = ""), 4000);
	};
	el.fail = (err) => {
		clearTimeout(t);
		el.className = "form-status error";
		el.textContent = err.message;
	};
	el.clear = () => (el.textContent = "");
	return el;
}

// testSound asks notify.js to play its notification sound, from this
// click (browsers let a page play sound only after a user gesture): the
// bus event "notify:test-sound" with a request that its listener marks
// played. Without a listener (notify.js not mounted) a plain beep says
// at least that the browser plays sound.
function testSound(bus) {
	const req = { played: false };
	bus.emit("notify:test-sound", req);
	if (req.played) return;
	const audio = new AudioContext();
	const o = audio.createOscillator();
	const g = audio.createGain();
	g.gain.value = 0.12;
	o.frequency.value = 880;
	o.connect(g).connect(audio.destination);
	o.start();
	o.stop(audio.currentTime + 0.25);
	o.onended = () => audio.close();
}

export function mount(el, ctx) {
	el.classList.add("profile");

	function saved(agent) {
		ctx.bus.emit("me", agent);
	}

	// The display name.
	const name = h("input", { name: "name", required: true, maxlength: "100", autocomplete: "name" });
	const nameStatus = status();
	const nameSave = h("button", { type: "submit", text: "Save name" });
	const nameForm = h(
		"form",
		{ class: "panel card-form", "aria-labelledby": "profile-name-title" },
		h("h2", { id: "profile-name-title", text: "Display name" }),
		field("Name", name, "What customers see next to your replies, in the chat and in your emails."),
		h("div", { class: "form-buttons" }, nameStatus, nameSave),
	);
	// What the agent typed is theirs until saved: a fresher agent from
	// the socket does not overwrite it.
	let nameEdited = false;
	name.addEventListener("input", () => (nameEdited = true));
	nameForm.addEventListener("submit", async (e) => {
		e.preventDefault();
		nameSave.disabled = true;
		try {
			const agent = await ctx.api("PATCH", "/agents/me", { name: name.value });
			markInvalid(nameForm, null);
			name.value = agent.name;
			nameEdited = false;
			saved(agent);
			nameStatus.ok("Saved. Customers see the new name from now on.");
		} catch (err) {
			markInvalid(nameForm, err.field);
			nameStatus.fail(err);
		} finally {
			nameSave.disabled = false;
		}
	});

	// The password.
	const current = h("input", { name: "current_password", type: "password", required: true, autocomplete: "current-password" });
	const next = h("input", { name: "new_password", type: "password", required: true, minlength: "10", maxlength: "72", autocomplete: "new-password" });
	const confirm = h("input", { name: "confirm_password", type: "password", required: true, autocomplete: "new-password" });
	const pwStatus = status();
	const pwSave = h("button", { type: "submit", text: "Change password" });
	const pwForm = h(
		"form",
		{ class: "panel card-form", "aria-labelledby": "profile-password-title" },
		h("h2", { id: "profile-password-title", text: "Password" }),
		field("Current password", current),
		h("div", { class: "grid-2" }, field("New password", next, "At least 10 characters."), field("Confirm new password", confirm)),
		h("div", { class: "form-buttons" }, pwStatus, pwSave),
	);
	pwForm.addEventListener("submit", async (e) => {
		e.preventDefault();
		if (next.value !== confirm.value) {
			markInvalid(pwForm, "confirm_password");
			pwStatus.fail(new Error("The new password and its confirmation differ."));
			return;
		}
		pwSave.disabled = true;
		try {
			await ctx.api("POST", "/auth/password", { current_password: current.value, new_password: next.value });
			markInvalid(pwForm, null);
			pwForm.reset();
			pwStatus.ok("Password changed. Your other sessions were logged out.");
		} catch (err) {
			markInvalid(pwForm, err.field);
			pwStatus.fail(err);
		} finally {
			pwSave.disabled = false;
		}
	});

	// Notifications and sound, saved as soon as they change.
	const radios = NOTIFICATIONS.map((n) => h("input", { type: "radio", name: "notifications", value: n.value }));
	const sound = h("input", { type: "checkbox", name: "sound", role: "switch" });
	const test = h("button", { type: "button", class: "secondary", text: "Test sound" });
	const perm = h("p", { class: "perm muted" });
	const setStatus = status();
	const setForm = h(
		"form",
		{ class: "panel card-form", "aria-labelledby": "profile-notify-title" },
		h("h2", { id: "profile-notify-title", text: "Notifications" }),
		h(
			"fieldset",
			{ class: "choices" },
			h("legend", { text: "Notify me of" }),
			NOTIFICATIONS.map((n, i) => h("label", { class: "choice" }, radios[i], h("span", {}, h("strong", { text: n.label }), h("span", { class: "muted", text: n.text })))),
		),
		h("div", { class: "sound-row" }, h("label", { class: "switch" }, sound, h("span", { class: "track", "aria-hidden": "true" }), h("span", { text: "Play a sound" })), test),
		perm,
		setStatus,
	);
	setForm.addEventListener("submit", (e) => e.preventDefault());
	// The settings are saved one request at a time, the latest choice
	// last: a change made while one is being saved is sent after it, and
	// the form is not reset from the agent meanwhile.
	let saving = false;
	let again = false;
	async function saveSettings() {
		if (saving) {
			again = true;
			return;
		}
		saving = true;
		try {
			do {
				again = false;
				const settings = { notifications: radios.find((r) => r.checked)?.value || "all", sound: sound.checked };
				const agent = await ctx.api("PATCH", "/agents/me", { settings });
				if (!again) {
					saving = false;
					saved(agent);
					setStatus.ok("Saved.");
				}
			} while (again);
		} catch (err) {
			saving = false;
			setStatus.fail(err);
			fill();
		}
	}
	setForm.addEventListener("change", (e) => {
		if (e.target === sound || radios.includes(e.target)) saveSettings();
	});
	test.addEventListener("click", () => {
		try {
			testSound(ctx.bus);
			setStatus.clear();
		} catch (err) {
			setStatus.fail(new Error(`The sound could not play: ${err.message}`));
		}
	});

	function renderPermission() {
		if (!("Notification" in window)) {
			perm.replaceChildren("This browser does not show notifications.");
			return;
		}
		const p = Notification.permission;
		if (p === "granted") perm.replaceChildren("Browser notifications are allowed for this site.");
		else if (p === "denied") perm.replaceChildren("Browser notifications are blocked for this site: allow them in the browser's site settings.");
		else
			perm.replaceChildren(
				"Browser notifications are not allowed yet. ",
				h("button", {
					type: "button",
					class: "link",
					text: "Allow notifications",
					onclick: async () => {
						await Notification.requestPermission();
						renderPermission();
					},
				}),
			);
	}

	// The API tokens: loaded when the page is shown, the value of a new
	// one forgotten when it is left.
	const tokens = apiTokens(ctx);

	// The account, read only.
	const account = h("dl", { class: "account" });

	function fill() {
		const me = ctx.me() || {};
		const s = me.settings || { notifications: "all", sound: true };
		if (!nameEdited) name.value = me.name || "";
		if (!saving) {
			for (const r of radios) r.checked = r.value === (s.notifications || "all");
			sound.checked = s.sound !== false;
		}
		account.replaceChildren(
			h("div", {}, h("dt", { text: "Email" }), h("dd", { text: me.email || "" })),
			h("div", {}, h("dt", { text: "Role" }), h("dd", { text: me.role === "admin" ? "Admin" : "Agent" })),
		);
		renderPermission();
	}

	el.replaceChildren(
		h(
			"div",
			{ class: "page narrow-page" },
			h("header", { class: "page-head" }, h("div", {}, h("h1", { text: "Profile" }), account)),
			nameForm,
			setForm,
			pwForm,
			tokens.el,
		),
	);
	fill();

	ctx.bus.on("me", fill);
	ctx.bus.on("main:me", fill);
	ctx.bus.on("route", (r) => {
		if (r === "profile") {
			fill();
			nameStatus.clear();
			pwStatus.clear();
			tokens.shown();
		} else tokens.hidden();
	});
}
