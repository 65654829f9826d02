/*
 * The one configured client of ratekit's admin API.
 *
 * Same origin as the dashboard; every request carries the session's bearer
 * token; every failure becomes an ApiError carrying the server's error shape
 * {"error": {"code", "message", "errors"?: [{field, message}]}}.
 */

const TOKEN_KEY = 'ratekit.token';

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message, errors = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.errors = errors;
  }
}

/*
 * The field errors of a failure ({field, message} of a 400) keyed by the
 * form's field (rename: a server field -> the form's); null when it named
 * none, so the caller shows the failure as a whole.
 */
export function fieldErrors(err, rename = {}) {
  const byField = {};
  for (const e of (err && err.errors) || []) byField[rename[e.field] || e.field] = e.message;
  return Object.keys(byField).length ? byField : null;
}

let unauthorizedListener = null;

/* The auth provider registers here to sign the user out when a token stops working. */
export function setUnauthorizedListener(listener) {
  unauthorizedListener = listener;
}

export function buildQuery(params) {
  if (!params) return '';
  const qs = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    qs.set(name, String(value));
  }
  const s = qs.toString();
  return s ? `?${s}` : '';
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: fall through to the status line */
  }
  const e = body && body.error;
  if (e && typeof e === 'object') {
    return new ApiError(response.status, e.code || 'error', e.message || response.statusText, e.errors || []);
  }
  const fallback =
    response.status === 404
      ? 'This endpoint is not available on this ratekit server.'
      : `The server answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(response.status, `http_${response.status}`, fallback);
}

/**
 * Sends one request. options: query (object), body (JSON-encoded), token
 * (overrides the stored one), raw (answer the Response instead of its JSON).
 * Answers the parsed JSON body, or null for 204.
 */
export async function apiRequest(method, path, options = {}) {
  const { query, body, token = getToken(), raw = false, signal } = options;
  const headers = { Accept: raw ? '*/*' : 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path + buildQuery(query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: 'same-origin',
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network_error', 'Cannot reach the ratekit server. Check that it is running.');
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && !options.token && unauthorizedListener) unauthorizedListener(error);
    throw error;
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(response.status, 'invalid_response', 'The server sent an answer that is not JSON.');
  }
}

export const api = {
  get: (path, options) => apiRequest('GET', path, options),
  post: (path, body, options) => apiRequest('POST', path, { ...options, body }),
  put: (path, body, options) => apiRequest('PUT', path, { ...options, body }),
  patch: (path, body, options) => apiRequest('PATCH', path, { ...options, body }),
  delete: (path, options) => apiRequest('DELETE', path, options),
};

/* URL of the event stream: EventSource cannot send headers, so the token rides in the query. */
export function streamUrl() {
  return `/api/v1/stream${buildQuery({ access_token: getToken() })}`;
}

/* Fetches a file with the Authorization header and hands it to the browser as a download. */
export async function downloadFile(path, query, filename) {
  const response = await apiRequest('GET', path, { query, raw: true });
  const blob = await response.blob();
  saveBlob(blob, filename);
}

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
