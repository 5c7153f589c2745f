// when.js: dates and durations for people, in the browser's locale and
// time zone: the visitor panel, the reports and the admin lists.

const sameDay = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const yearFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function parse(iso) {
	const d = iso instanceof Date ? iso : new Date(iso);
	return isNaN(d) ? null : d;
}

// dateTime says when, as short as it can: "14:05" today, "Yesterday
// 09:12", "12 Mar 14:05" this year, "12 Mar 2024" before.
export function dateTime(iso, now = new Date()) {
	const d = parse(iso);
	if (!d) return "";
	if (sameDay(d, now)) return timeFmt.format(d);
	const y = new Date(now);
	y.setDate(y.getDate() - 1);
	if (sameDay(d, y)) return `Yesterday ${timeFmt.format(d)}`;
	if (d.getFullYear() === now.getFullYear()) return `${dayFmt.format(d)} ${timeFmt.format(d)}`;
	return yearFmt.format(d);
}

// fullDate is the whole date and time, for a title attribute.
export function fullDate(iso) {
	const d = parse(iso);
	return d ? fullFmt.format(d) : "";
}

// ago says how long ago: "just now", "5 min ago", "3 h ago", then the
// date.
export function ago(iso, now = new Date()) {
	const d = parse(iso);
	if (!d) return "";
	const s = (now - d) / 1000;
	if (s < 60) return "just now";
	if (s < 3600) return `${Math.floor(s / 60)} min ago`;
	if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
	return dateTime(d, now);
}

// duration says how long a number of seconds is: "45 s", "3 min 20 s",
// "2 h 5 min", "1 d 4 h"; "—" for null.
export function duration(sec) {
	if (sec == null || !isFinite(sec)) return "—";
	sec = Math.round(sec);
	if (sec < 60) return `${sec} s`;
	const m = Math.floor(sec / 60);
	if (m < 60) return sec % 60 ? `${m} min ${sec % 60} s` : `${m} min`;
	const hr = Math.floor(m / 60);
	if (hr < 24) return m % 60 ? `${hr} h ${m % 60} min` : `${hr} h`;
	const d = Math.floor(hr / 24);
	return hr % 24 ? `${d} d ${hr % 24} h` : `${d} d`;
}

// timeEl is a <time> element with the short form as its text and the
// full date as its title.
export function timeEl(h, iso, text) {
	return h("time", { datetime: iso, title: fullDate(iso), text: text ?? dateTime(iso) });
}
