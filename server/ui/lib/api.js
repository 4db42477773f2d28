/**
 * The console's only ways to the server: the public admin API (fetch with the bearer token in the
 * Authorization header) and the live channel (GET /api/v1/events read as a server-sent-events
 * stream through fetch, because EventSource cannot send headers). The token lives in memory and,
 * so that a reload keeps the session, in sessionStorage: the browser drops it when the tab
 * closes. It is never put in a URL, a cookie or localStorage.
 */
const KEY = 'flotilla.console.token';
let token = null;
try {
  token = sessionStorage.getItem(KEY);
} catch {
  token = null;
}

export function currentToken() {
  return token;
}

export function setToken(t) {
  token = t;
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch {
    /* storage disabled: the token stays in memory for this page only */
  }
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const listeners = new Set();
/** Called with every ApiError (the app signs out on 401). */
export function onApiError(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

async function request(path, { method = 'GET', body, auth = token } = {}) {
  const headers = { accept: 'application/json' };
  if (auth) headers.authorization = `Bearer ${auth}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  if (res.status === 204) return null;
  const j = await res.json().catch(() => null);
  if (!res.ok) {
    const e = j && typeof j.error === 'object' && j.error !== null ? j.error : j ?? {};
    throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? e.error ?? res.statusText, e.details);
  }
  return j;
}

/** A call of the admin API with the session's token; errors are ApiErrors (and reach onApiError). */
export async function api(path, opts) {
  try {
    return await request(path, opts);
  } catch (err) {
    if (err instanceof ApiError) for (const f of listeners) f(err);
    throw err;
  }
}

export const enc = encodeURIComponent;

/**
 * Which role a token has: 'admin', 'viewer', or null when the server refuses it (or it is a
 * device token). Probes a read route (viewer) and an admin-only listing (tokens).
 */
export async function probeRole(t) {
  try {
    await request('/api/v1/tasks', { auth: t });
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return null;
    throw err;
  }
  try {
    await request('/api/v1/tokens', { auth: t });
    return 'admin';
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return 'viewer';
    throw err;
  }
}

/**
 * The live channel: one stream per console, reconnected with backoff. `onEvent(name, data)` for
 * every frame; `onState('live' | 'reconnecting' | 'refused')`. Returns a function that closes it.
 */
export function openLive(onEvent, onState) {
  let stopped = false;
  let ctrl = null;
  const sleep = (t) => new Promise((r) => setTimeout(r, t));
  (async () => {
    let delay = 1000;
    while (!stopped) {
      try {
        ctrl = new AbortController();
        const res = await fetch('/api/v1/events', { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: ctrl.signal, cache: 'no-store', credentials: 'omit' });
        if (res.status === 401 || res.status === 403) {
          onState('refused');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState('live');
        delay = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data) onEvent(event, JSON.parse(data));
          }
        }
      } catch {
        /* dropped: reconnect below */
      }
      if (stopped) return;
      onState('reconnecting');
      await sleep(delay);
      delay = Math.min(delay * 2, 15_000);
    }
  })();
  return () => {
    stopped = true;
    ctrl?.abort();
  };
}
