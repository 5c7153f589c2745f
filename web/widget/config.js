// The widget's options, read once from its own <script> tag:
//
//   data-position  "right" (default) or "left": which bottom corner
//   data-color     the accent color (any CSS color); text on it is
//                  black or white, whichever reads better
//   data-title     the panel's title (default "Live Chat")
//   data-open      "true" opens the panel on the first page view
//
// The server is the origin the script came from: the widget talks to
// nothing else.
export function readConfig(script) {
	const d = (script && script.dataset) || {};
	const src = new URL((script && script.src) || "/widget.js", location.href);
	const color = d.color && CSS.supports("color", d.color) ? d.color : "";
	return {
		origin: src.origin,
		position: d.position === "left" ? "left" : "right",
		color,
		ink: color ? inkFor(color) : "",
		title: (d.title || "Live Chat").slice(0, 80),
		open: d.open === "true",
	};
}

// inkFor picks black or white text for a background color, by its
// luminance; colors it cannot read (names, functions) get white.
function inkFor(color) {
	let m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color.trim());
	if (!m) return "#fff";
	let hex = m[1];
	if (hex.length === 3) hex = hex.replace(/./g, "$&$&");
	const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
	return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.6 ? "#111" : "#fff";
}
