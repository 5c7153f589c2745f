// worldmap.js: the visitor panel's location map (spec rule 11), drawn in
// the page as SVG from worldmap-data.js: no tiles, no outside service.
// The contact's country is filled and pinned, and the view is framed
// around it; without a country the whole world shows.
import { WIDTH, HEIGHT, COUNTRIES } from "./worldmap-data.js";

const SVG = "http://www.w3.org/2000/svg";

// Aspect ratio of the drawing (width / height), as the panel shows it.
const ASPECT = 16 / 9;

function svg(tag, attrs) {
	const el = document.createElementNS(SVG, tag);
	for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
	return el;
}

let regionNames = null;

// countryName returns the English name of an ISO 3166-1 alpha-2 code: the
// map's, else the browser's (Intl.DisplayNames), else the code itself.
export function countryName(code) {
	code = String(code || "").toUpperCase();
	if (!code) return "";
	if (COUNTRIES[code]) return COUNTRIES[code][0];
	try {
		regionNames ??= new Intl.DisplayNames(["en"], { type: "region" });
		return regionNames.of(code) || code;
	} catch {
		return code;
	}
}

// onMap reports whether the map can mark the country.
export function onMap(code) {
	return !!COUNTRIES[String(code || "").toUpperCase()];
}

// frame returns the view box around a country's frame: at least a sixth
// of the world wide, with room around it, kept inside the map.
function frame(row) {
	const [, , , x, y, w, h] = row;
	let vw = Math.max(w * 2.6, h * 2.6 * ASPECT, WIDTH / 6);
	let vh = vw / ASPECT;
	if (vw > WIDTH) {
		vw = WIDTH;
		vh = vw / ASPECT;
	}
	let vx = x + w / 2 - vw / 2;
	let vy = y + h / 2 - vh / 2;
	vx = Math.min(Math.max(vx, 0), WIDTH - vw);
	vy = Math.min(Math.max(vy, 0), Math.max(HEIGHT - vh, 0));
	return [vx, vy, vw, vh].map((n) => Math.round(n));
}

// worldMap returns an <svg class="worldmap"> of the world with the country
// of an ISO 3166-1 alpha-2 code (any case) marked: its path has
// data-country="XX" and the class "marked", and a pin sits on it. Every
// path carries its data-country. Names are set as text (<title>).
export function worldMap(code) {
	code = String(code || "").toUpperCase();
	const row = COUNTRIES[code];
	const box = row ? frame(row) : [0, 0, WIDTH, HEIGHT];
	const name = countryName(code);
	const el = svg("svg", {
		class: "worldmap",
		viewBox: box.join(" "),
		role: "img",
		preserveAspectRatio: "xMidYMid slice",
	});
	el.setAttribute("aria-label", row ? `Map: ${name}` : "World map: location unknown");
	const sea = svg("rect", { class: "sea", x: 0, y: 0, width: WIDTH, height: HEIGHT });
	el.append(sea);
	const land = svg("g", { class: "land" });
	let marked = null;
	for (const [cc, r] of Object.entries(COUNTRIES)) {
		const p = svg("path", { d: r[7], "data-country": cc });
		if (cc === code) {
			marked = p;
			continue;
		}
		land.append(p);
	}
	el.append(land);
	if (marked) {
		// Drawn last so that its outline is on top of its neighbours'.
		marked.classList.add("marked");
		const t = svg("title");
		t.textContent = name;
		marked.append(t);
		el.append(marked);
		const [, cx, cy] = row;
		const r = Math.max(box[2] / 70, 2);
		el.append(
			svg("circle", { class: "pulse", cx, cy, r: r * 2.4 }),
			svg("circle", { class: "pin", cx, cy, r }),
		);
	}
	return el;
}
