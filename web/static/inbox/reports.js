// reports.js: Reports > Operators (issue 13 item 9, spec rule 3): per
// agent over a chosen period, the conversations joined, the ratings
// (count, average, distribution, comments) and the median first
// response; a chart drawn in the page as SVG (no chart library) of
// conversations joined or ratings per day and agent; and the same table
// as CSV (GET /reports/operators.csv). Shown at #/reports; read again
// when a rating or a join comes in while it is shown. All user text is
// set as text.
import { h, icon } from "/static/shared/dom.js";
import { duration, timeEl } from "./when.js";

const SVG = "http://www.w3.org/2000/svg";
const DAY = 86400000;

// Colours of the agents in the chart, in order; past eight they repeat.
const PALETTE = ["#3451b2", "#e5484d", "#2fb344", "#f59f00", "#8e4ec6", "#0d9488", "#d6409f", "#64748b"];

const PERIODS = [
	{ days: 7, label: "Last 7 days" },
	{ days: 30, label: "Last 30 days" },
	{ days: 90, label: "Last 90 days" },
];

const METRICS = [
	{ key: "joined", label: "Conversations joined" },
	{ key: "ratings", label: "Ratings" },
];

const I = {
	download: "M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M7 10l5 5 5-5M12 15V3",
	star: "M12 2l3.1 6.3 6.9 1-5 4.9 1.2 6.8L12 17.8 5.8 21l1.2-6.8-5-4.9 6.9-1z",
};

function svg(tag, attrs, ...kids) {
	const el = document.createElementNS(SVG, tag);
	for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
	for (const k of kids) if (k != null) el.append(k);
	return el;
}

// svgTitle is a <title> child: the browser's tooltip, set as text.
function svgTitle(text) {
	const t = document.createElementNS(SVG, "title");
	t.textContent = text;
	return t;
}

// localDay returns the start of the local day of d, plus add days.
function localDay(d, add = 0) {
	const x = new Date(d.getFullYear(), d.getMonth(), d.getDate());
	x.setDate(x.getDate() + add);
	return x;
}

// ymd is a local date as YYYY-MM-DD (the value of <input type=date>).
function ymd(d) {
	return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// parseYMD reads YYYY-MM-DD as the start of that local day.
function parseYMD(s) {
	const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || "");
	return m ? new Date(+m[1], +m[2] - 1, +m[3]) : null;
}

// utcDays lists the UTC dates (YYYY-MM-DD) from from up to to.
function utcDays(from, to) {
	const out = [];
	let t = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
	for (; t < to.getTime() && out.length < 400; t += DAY) out.push(new Date(t).toISOString().slice(0, 10));
	return out;
}

function stars(score) {
	return "★".repeat(score) + "☆".repeat(5 - score);
}

// scale returns the step and the top of a chart's axis for values up to
// v: four steps or fewer of a whole 1, 2 or 5 times a power of ten.
function scale(v) {
	if (v <= 4) return { step: 1, max: Math.max(1, Math.ceil(v)) };
	const raw = v / 4;
	const p = 10 ** Math.floor(Math.log10(raw));
	const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
	return { step, max: step * Math.ceil(v / step) };
}

// chart draws stacked bars per day and agent: an <svg class="chart">.
export function chart(days, series, { height = 220 } = {}) {
	const width = 960;
	const pad = { l: 36, r: 8, t: 12, b: 26 };
	const iw = width - pad.l - pad.r;
	const ih = height - pad.t - pad.b;
	const totals = days.map((_, i) => series.reduce((s, a) => s + (a.values[i] || 0), 0));
	const { step, max } = scale(Math.max(0, ...totals));
	const el = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" });
	const sum = totals.reduce((a, b) => a + b, 0);
	el.setAttribute("aria-label", `${sum} in ${days.length} days`);
	const y = (v) => pad.t + ih - (v / max) * ih;
	const grid = svg("g", { class: "grid" });
	for (let v = 0; v <= max; v += step) {
		grid.append(
			svg("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v) }),
			svg("text", { x: pad.l - 8, y: y(v) + 4, "text-anchor": "end" }, String(v)),
		);
	}
	el.append(grid);
	const slot = iw / Math.max(days.length, 1);
	const bw = Math.max(2, Math.min(28, slot * 0.68));
	const bars = svg("g", { class: "bars" });
	const labels = svg("g", { class: "xlabels" });
	const every = Math.ceil(days.length / 12);
	days.forEach((day, i) => {
		const x = pad.l + slot * i + (slot - bw) / 2;
		let base = 0;
		for (const a of series) {
			const v = a.values[i] || 0;
			if (!v) continue;
			const r = svg("rect", { x, y: y(base + v), width: bw, height: Math.max(0, y(base) - y(base + v)), fill: a.color, rx: 2 });
			r.append(svgTitle(`${a.name}, ${day}: ${v}`));
			bars.append(r);
			base += v;
		}
		if (i % every === 0) {
			const d = new Date(day + "T00:00:00Z");
			const text = d.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
			labels.append(svg("text", { x: pad.l + slot * i + slot / 2, y: height - 8, "text-anchor": "middle" }, text));
		}
	});
	el.append(svg("line", { class: "axis", x1: pad.l, x2: width - pad.r, y1: y(0), y2: y(0) }), bars, labels);
	return el;
}

// distribution draws the five bars of a rating distribution, 5 at the top.
function distribution(dist) {
	const n = (dist || []).reduce((a, b) => a + b, 0);
	const wrap = h("div", { class: "dist", role: "img" });
	wrap.setAttribute("aria-label", [5, 4, 3, 2, 1].map((s) => `${s}: ${dist?.[s - 1] || 0}`).join(", "));
	for (let s = 5; s >= 1; s--) {
		const v = dist?.[s - 1] || 0;
		const bar = h("span", { class: `fill s${s}` });
		bar.style.width = n ? `${(v / n) * 100}%` : "0";
		wrap.append(h("div", { class: "dist-row", title: `${s} ★: ${v}` }, h("span", { class: "dist-label", text: String(s) }), h("span", { class: "track" }, bar), h("span", { class: "dist-n", text: String(v) })));
	}
	return wrap;
}

export function mount(el, ctx) {
	el.classList.add("reports");
	let period = { days: 30 };
	let metric = "joined";
	let data = null;
	let loading = 0;
	let shown = false;
	let reloadTimer = 0;
	const open = new Set(); // agent ids whose comments are expanded

	const tabs = h(
		"div",
		{ class: "tabs", role: "tablist", "aria-label": "Reports" },
		h("button", { type: "button", role: "tab", id: "reports-tab-operators", "aria-selected": "true", "aria-controls": "reports-operators", class: "tab selected", text: "Operators" }),
	);
	const presets = h("div", { class: "segmented", role: "group", "aria-label": "Period" });
	const fromInput = h("input", { type: "date", "aria-label": "From", required: true });
	const toInput = h("input", { type: "date", "aria-label": "To", required: true });
	const custom = h(
		"form",
		{ class: "custom-range" },
		h("label", {}, h("span", { text: "From" }), fromInput),
		h("label", {}, h("span", { text: "To" }), toInput),
		h("button", { type: "submit", class: "secondary", text: "Apply" }),
	);
	const csv = h("a", { class: "button secondary export", href: "#", download: "operators.csv" }, icon(I.download), "Export CSV");
	const range = h("p", { class: "range muted" });
	const error = h("p", { class: "error", role: "alert" });
	const kpis = h("div", { class: "kpis" });
	const metricSel = h("div", { class: "segmented small", role: "group", "aria-label": "Chart" });
	const chartBox = h("div", { class: "chart-box" });
	const legend = h("ul", { class: "legend" });
	const table = h("div", { class: "table-wrap" });
	el.replaceChildren(
		h(
			"div",
			{ class: "page" },
			h("header", { class: "page-head" }, h("div", {}, h("h1", { text: "Reports" }), range), tabs),
			h(
				"section",
				{ id: "reports-operators", class: "tabpanel", role: "tabpanel", "aria-labelledby": "reports-tab-operators" },
				h("div", { class: "toolbar" }, presets, custom, h("span", { class: "spacer" }), csv),
				error,
				kpis,
				h(
					"div",
					{ class: "panel chart-panel" },
					h("div", { class: "panel-head" }, h("h2", { text: "Activity per day" }), metricSel),
					chartBox,
					legend,
				),
				h("div", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", { text: "Operators" })), table),
			),
		),
	);

	function periodRange() {
		const now = new Date();
		if (period.from) return { from: period.from, to: period.to };
		return { from: localDay(now, -(period.days - 1)), to: localDay(now, 1) };
	}

	function renderControls() {
		presets.replaceChildren(
			...PERIODS.map((p) =>
				h("button", {
					type: "button",
					class: !period.from && period.days === p.days ? "selected" : "",
					"aria-pressed": String(!period.from && period.days === p.days),
					text: p.label,
					onclick: () => {
						period = { days: p.days };
						load();
					},
				}),
			),
			h("button", {
				type: "button",
				class: period.from ? "selected" : "",
				"aria-pressed": String(!!period.from),
				text: "Custom",
				onclick: () => {
					custom.classList.add("shown");
					fromInput.focus();
				},
			}),
		);
		custom.classList.toggle("shown", !!period.from);
		const { from, to } = periodRange();
		fromInput.value = ymd(from);
		toInput.value = ymd(localDay(new Date(to.getTime() - 1)));
		metricSel.replaceChildren(
			...METRICS.map((m) =>
				h("button", {
					type: "button",
					class: metric === m.key ? "selected" : "",
					"aria-pressed": String(metric === m.key),
					text: m.label,
					onclick: () => {
						metric = m.key;
						renderControls();
						if (data) renderChart();
					},
				}),
			),
		);
	}

	custom.addEventListener("submit", (e) => {
		e.preventDefault();
		const from = parseYMD(fromInput.value);
		const last = parseYMD(toInput.value);
		if (!from || !last || last < from) {
			error.textContent = "Choose a start date on or before the end date.";
			return;
		}
		const to = localDay(last, 1);
		if (to - from > 366 * DAY) {
			error.textContent = "Choose a period of at most 366 days.";
			return;
		}
		period = { from, to };
		load();
	});

	async function load() {
		const my = ++loading;
		renderControls();
		error.textContent = "";
		const { from, to } = periodRange();
		const q = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
		csv.href = `/api/v1/reports/operators.csv?${q}`;
		csv.setAttribute("download", `operators-${ymd(from)}-to-${ymd(localDay(new Date(to - 1)))}.csv`);
		range.textContent = `${from.toLocaleDateString(undefined, { dateStyle: "medium" })} – ${new Date(to - 1).toLocaleDateString(undefined, { dateStyle: "medium" })}`;
		el.setAttribute("aria-busy", "true");
		try {
			const res = await ctx.api("GET", `/reports/operators?${q}`);
			if (my !== loading) return;
			data = res;
			render();
		} catch (err) {
			if (my !== loading) return;
			error.textContent = err.message;
		} finally {
			if (my === loading) el.removeAttribute("aria-busy");
		}
	}

	function series() {
		const ops = [...data.operators].sort((a, b) => a.agent_id - b.agent_id);
		const days = utcDays(new Date(data.from), new Date(data.to));
		for (const d of data.daily || []) if (!days.includes(d.date)) days.push(d.date);
		days.sort();
		const index = new Map(days.map((d, i) => [d, i]));
		const byAgent = new Map(ops.map((o, i) => [o.agent_id, { name: o.name, color: PALETTE[i % PALETTE.length], values: new Array(days.length).fill(0) }]));
		for (const d of data.daily || []) {
			const s = byAgent.get(d.agent_id);
			if (s) s.values[index.get(d.date)] += d[metric] || 0;
		}
		return { days, series: [...byAgent.values()] };
	}

	function renderChart() {
		const { days, series: ss } = series();
		const c = chart(days, ss, { height: 150 });
		c.dataset.metric = metric;
		chartBox.replaceChildren(c);
		legend.replaceChildren(
			...ss.map((s) => {
				const sw = h("span", { class: "swatch" });
				sw.style.background = s.color;
				const total = s.values.reduce((a, b) => a + b, 0);
				return h("li", {}, sw, h("span", { text: s.name }), h("span", { class: "muted", text: ` ${total}` }));
			}),
		);
	}

	function renderKPIs() {
		const ops = data.operators;
		const joined = ops.reduce((a, o) => a + o.conversations_joined, 0);
		const count = ops.reduce((a, o) => a + o.ratings.count, 0);
		const sum = ops.reduce((a, o) => a + (o.ratings.average || 0) * o.ratings.count, 0);
		const good = ops.reduce((a, o) => a + (o.ratings.distribution?.[3] || 0) + (o.ratings.distribution?.[4] || 0), 0);
		const medians = ops.map((o) => o.median_first_response_seconds).filter((v) => v != null).sort((a, b) => a - b);
		const kpi = (label, value, note) => h("div", { class: "kpi" }, h("span", { class: "kpi-label", text: label }), h("strong", { class: "kpi-value", text: value }), h("span", { class: "kpi-note muted", text: note || "" }));
		kpis.replaceChildren(
			kpi("Conversations joined", String(joined), `${ops.length} ${ops.length === 1 ? "operator" : "operators"}`),
			kpi("Ratings", String(count), count ? `${Math.round((good / count) * 100)}% rated 4 or 5` : "none yet"),
			kpi("Average rating", count ? (sum / count).toFixed(2) : "—", count ? stars(Math.round(sum / count)) : ""),
			kpi("Median first response", medians.length ? duration(medians[Math.floor((medians.length - 1) / 2)]) : "—", "middle of the operators' medians"),
		);
	}

	function comments(o) {
		const list = h("ul", { class: "comments" });
		for (const c of o.ratings.comments || []) {
			list.append(
				h(
					"li",
					{},
					h("span", { class: `score s${c.score}`, title: `${c.score} of 5`, text: stars(c.score) }),
					h("p", { class: "comment", text: c.comment }),
					h(
						"span",
						{ class: "comment-meta muted" },
						timeEl(h, c.at),
						" · ",
						h("a", {
							href: `#/c/${c.conversation_id}`,
							text: `Conversation #${c.conversation_id}`,
							onclick: (e) => {
								e.preventDefault();
								ctx.open(c.conversation_id);
							},
						}),
					),
				),
			);
		}
		return list;
	}

	function renderTable() {
		const ops = [...data.operators].sort((a, b) => b.conversations_joined - a.conversations_joined || a.name.localeCompare(b.name));
		if (!ops.length) {
			table.replaceChildren(h("p", { class: "empty-state", text: "No operator activity in this period." }));
			return;
		}
		const head = h(
			"tr",
			{},
			...["Operator", "Joined", "Ratings", "Average", "Distribution", "Median first response", "Comments"].map((t, i) => h("th", { scope: "col", class: i > 0 && i < 4 ? "num" : i === 5 ? "num" : "", text: t })),
		);
		const body = h("tbody");
		for (const o of ops) {
			const n = (o.ratings.comments || []).length;
			const tr = h(
				"tr",
				{ "data-agent": o.agent_id },
				h("th", { scope: "row" }, h("div", { class: "op" }, h("span", { class: "avatar small", "aria-hidden": "true", text: (o.name || "?").charAt(0).toUpperCase() }), h("span", { class: "op-name", text: o.name }), o.disabled ? h("span", { class: "badge off", text: "Disabled" }) : null)),
				h("td", { class: "num joined", text: String(o.conversations_joined) }),
				h("td", { class: "num ratings", text: String(o.ratings.count) }),
				h("td", { class: "num average" }, o.ratings.average == null ? "—" : h("span", {}, icon(I.star), o.ratings.average.toFixed(2))),
				h("td", { class: "distribution" }, distribution(o.ratings.distribution)),
				h("td", { class: "num frt", text: duration(o.median_first_response_seconds) }),
				h("td", { class: "comments-cell" }),
			);
			body.append(tr);
			if (n) {
				const expanded = open.has(o.agent_id);
				const btn = h("button", {
					type: "button",
					class: "link",
					"aria-expanded": String(expanded),
					text: `${n} ${n === 1 ? "comment" : "comments"}`,
					onclick: () => {
						if (open.has(o.agent_id)) open.delete(o.agent_id);
						else open.add(o.agent_id);
						renderTable();
					},
				});
				tr.lastChild.append(btn);
				if (expanded) body.append(h("tr", { class: "comments-row" }, h("td", { colspan: "7" }, comments(o))));
			} else {
				tr.lastChild.append(h("span", { class: "muted", text: "—" }));
			}
		}
		table.replaceChildren(h("table", { class: "data operators" }, h("thead", {}, head), body));
	}

	function render() {
		renderKPIs();
		renderChart();
		renderTable();
	}

	// Read again, once, shortly after what changes the report happens
	// while it is shown.
	function soon() {
		clearTimeout(reloadTimer);
		reloadTimer = setTimeout(() => shown && load(), 800);
	}

	ctx.bus.on("route", (name) => {
		shown = name === "reports";
		if (shown) load();
	});
	ctx.bus.on("event", ({ ev, live }) => {
		if (shown && live && ev && (ev.type === "rated" || ev.type === "joined")) soon();
	});

	shown = !el.hidden && el.offsetParent !== null;
	renderControls();
	if (shown) load();
}
