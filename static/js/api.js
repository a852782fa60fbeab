// The one way pages talk to the JSON API: JSON in and out, the CSRF token on every state change,
// and problem JSON (RFC 9457) turned into a message a person can read.

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export class ApiError extends Error {
  constructor(status, problem) {
    super(readableMessage(status, problem));
    this.name = "ApiError";
    this.status = status;
    this.code = problem?.code ?? (status === 0 ? "network_error" : "http_error");
    this.problem = problem ?? null;
    this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
  }
}

export function cookie(name) {
  const prefix = `${name}=`;
  for (const part of document.cookie.split(";")) {
    const item = part.trim();
    if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
  }
  return null;
}

function fieldName(loc) {
  const parts = (Array.isArray(loc) ? loc : [loc]).filter((p) => p !== "body" && p !== "query");
  return parts.map(String).join(" › ").replaceAll("_", " ");
}

/** A sentence for the person in front of the screen, preferring the server's own `detail`. */
export function readableMessage(status, problem) {
  if (status === 0) return "Can't reach Chargeslot. Check your connection and try again.";
  const errors = Array.isArray(problem?.errors) ? problem.errors : [];
  if (errors.length > 1 || (errors.length === 1 && !problem?.detail)) {
    return errors.map((e) => (e.loc?.length ? `${fieldName(e.loc)}: ${e.msg}` : e.msg)).join(". ");
  }
  if (problem?.detail) return problem.detail;
  if (status === 401) return "Please sign in to continue.";
  if (status === 403) return "You don't have permission to do that.";
  if (status === 404) return "That was not found. It may have been removed.";
  if (status === 429) return "Too many attempts. Wait a moment and try again.";
  if (status >= 500) return "Something went wrong on our side. Please try again.";
  return problem?.title || `Request failed (${status}).`;
}

export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const init = { method, headers: { Accept: "application/json, application/problem+json", ...headers }, signal };
  init.credentials = "same-origin";
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (!SAFE.has(method)) {
    const token = cookie("csrf_token");
    if (token) init.headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    throw new ApiError(0, null);
  }
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, opts) => api(path, { ...opts, method: "GET" });
export const post = (path, body, opts) => api(path, { ...opts, method: "POST", body });
export const patch = (path, body, opts) => api(path, { ...opts, method: "PATCH", body });
export const put = (path, body, opts) => api(path, { ...opts, method: "PUT", body });
export const del = (path, opts) => api(path, { ...opts, method: "DELETE" });

/** What to tell the user about any failure: the API's words, or a plain retry hint for a bug. */
export function messageOf(err) {
  if (err instanceof ApiError) return err.message;
  console.error(err);
  return "Something went wrong. Please reload the page.";
}
