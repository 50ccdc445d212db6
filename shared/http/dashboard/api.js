// The API, called with the caller's own identity: same-origin fetches carry App Service Authentication's cookie
// (the platform then adds the principal headers); without it, a function key kept in this tab's sessionStorage.

const KEY_STORE = 'llmrouter.functionKey';
// The page is served at <prefix>/dashboard, so the API is its sibling: <prefix>/ (prefix "api" unless host.json says).
export const apiBase = new URL('./', window.location.href);

export class ApiError extends Error {
  /** status 0: the API could not be reached. `body` is the API's JSON error, when it sent one. */
  constructor(status, body, fallback) {
    const error = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
    super(error?.message || fallback || `The API answered ${status}.`);
    this.status = status;
    this.code = error?.code || null;
    this.field = error?.field || null;
    this.correlationId = error?.correlation_id || null;
  }
}

export const functionKey = {
  get: () => { try { return sessionStorage.getItem(KEY_STORE); } catch { return null; } },
  set: (value) => sessionStorage.setItem(KEY_STORE, value),
  clear: () => sessionStorage.removeItem(KEY_STORE),
};

export function url(path, query) {
  const target = new URL(path, apiBase);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== '') target.searchParams.set(name, value);
  }
  return target;
}

/** Call the API; answers the parsed JSON (null for 204), or throws ApiError worded as the API worded it. */
export async function call(path, { method = 'GET', query, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = functionKey.get();
  if (key) headers['x-functions-key'] = key;
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, null, `The API could not be reached (${error.message}).`);
  }
  if (!performance.getEntriesByName('dashboard:data').length) performance.mark('dashboard:data');
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: a gateway's page, shown as its status */ }
  if (!response.ok) {
    const fallback = response.status === 401
      ? 'The API needs a function key or a sign-in (401).'
      : `The API answered ${response.status} ${response.statusText}`.trim() + '.';
    throw new ApiError(response.status, data, fallback);
  }
  if (data === null && text) throw new ApiError(response.status, null, 'The API answered with something that is not JSON.');
  return data;
}

/**
 * Why a call got 401: "login" when App Service Authentication is on and this browser is not signed in; "key" when
 * what is missing (or wrong) is a function key. /.auth/me exists only behind App Service Authentication.
 */
export async function whyUnauthorized() {
  try {
    const response = await fetch('/.auth/me', { credentials: 'same-origin', cache: 'no-store' });
    if (response.status === 401 || response.status === 403) return 'login';
  } catch { /* no answer: treat as no App Service Authentication */ }
  return 'key';
}

/** Who App Service Authentication says is signed in, or null (none, or not behind it). Only asked in Azure. */
export async function signedInUser() {
  if (['localhost', '127.0.0.1', '[::1]'].includes(window.location.hostname)) return null;
  try {
    const response = await fetch('/.auth/me', { credentials: 'same-origin', cache: 'no-store' });
    if (!response.ok) return null;
    const [entry] = await response.json();
    return entry ? entry.user_id || null : null;
  } catch { return null; }
}

export const loginUrl = () =>
  `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(window.location.pathname + window.location.hash)}`;

export const analytics = (from, to) => call('analytics', { query: { from, to } });
export const sessions = (continuation, limit = 20) => call('sessions', { query: { limit, continuation } });
export const session = (id) => call(`sessions/${encodeURIComponent(id)}`);
export const exportSession = (id) => call(`sessions/${encodeURIComponent(id)}/export`);
export const deleteSession = (id) => call(`sessions/${encodeURIComponent(id)}`, { method: 'DELETE' });
export const rate = (id, turn, rating) =>
  call(`sessions/${encodeURIComponent(id)}/turns/${turn}/feedback`, { method: 'POST', body: { rating } });
