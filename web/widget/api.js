// The widget's HTTP calls to /api/v1/widget (docs/widget-protocol.md):
// fetch without cookies, the visitor token in the Authorization header,
// never in a URL.

// ApiError is a refused or failed request: status 0 when the server could
// not be reached; field, code and retryAfter (seconds) from the answer.
export class ApiError extends Error {
	constructor(status, body) {
		super((body && body.error) || "The request failed (" + status + ").");
		this.status = status;
		this.field = body && body.field;
		this.code = body && body.code;
		this.retryAfter = (body && body.retry_after) || 0;
	}
}

// createApi returns the calls, for the server at origin, authenticated
// with what token() returns.
export function createApi(origin, token) {
	async function call(method, path, body, raw) {
		const headers = {};
		const t = token();
		if (t) headers.Authorization = "Bearer " + t;
		if (body !== undefined && !raw) {
			headers["Content-Type"] = "application/json";
			body = JSON.stringify(body);
		}
		let res;
		try {
			res = await fetch(origin + "/api/v1/widget" + path, { method, headers, body, credentials: "omit", mode: "cors" });
		} catch {
			throw new ApiError(0, { error: "The chat server cannot be reached. Check your connection and try again." });
		}
		if (!res.ok) {
			let b = {};
			try {
				b = await res.json();
			} catch {}
			if (!b.retry_after && res.headers.get("Retry-After")) b.retry_after = +res.headers.get("Retry-After") || 0;
			throw new ApiError(res.status, b);
		}
		return path.startsWith("/attachments/") ? res.blob() : res.json();
	}
	return {
		start: (form) => call("POST", "/conversations", form),
		state: () => call("GET", "/state"),
		older: (before) => call("GET", "/messages?limit=50&before=" + before),
		upload(file) {
			const f = new FormData();
			f.append("file", file, file.name || "pasted-image.png");
			return call("POST", "/uploads", f, true);
		},
		attachment: (id) => call("GET", "/attachments/" + id),
		rate: (score, comment) => call("POST", "/rating", { score, comment }),
	};
}
