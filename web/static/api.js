// api.js: the JSON API, for the dashboard and setup pages. Writes carry
// the session's CSRF token in X-CSRF-Token.

let csrfToken = "";

export function setCSRFToken(token) {
  csrfToken = token || "";
}

// APIError carries the answer's status and its "error" text.
export class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || `request failed (${status})`);
    this.status = status;
    this.field = body && body.field;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch("/api/v1" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}
