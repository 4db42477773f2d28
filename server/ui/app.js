import { html, render, useEffect, useState } from './vendor/htm-preact.mjs';
import { currentToken, onApiError, probeRole, setToken } from './lib/api.js';
import { startLive, stopLive, usePulse } from './lib/live.js';
import { Overview } from './pages/overview.js';
import { Task } from './pages/task.js';
import { Fleet } from './pages/fleet.js';
import { Registry } from './pages/registry.js';
import { Serving } from './pages/serving.js';

/**
 * The console's shell: sign-in with a token (admin or viewer), navigation, and the hash router
 * (#/overview, #/task/<id>, #/fleet, #/registry[/<model>], #/serving). Routes carry no secrets.
 */
const PAGES = [
  ['overview', 'Overview'],
  ['fleet', 'Fleet'],
  ['registry', 'Registry'],
  ['serving', 'Serving'],
];

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { page: parts[0] || 'overview', arg: parts[1] ?? null };
}

function useHash() {
  const [r, set] = useState(parseHash());
  useEffect(() => {
    const f = () => set(parseHash());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return r;
}

function Login({ onLogin, notice }) {
  const [error, setError] = useState(notice);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const t = e.target.elements.token.value.trim();
    if (!t) return;
    setBusy(true);
    try {
      const role = await probeRole(t);
      if (!role) setError('The server refused this token (unknown, expired, revoked, or a device token).');
      else onLogin(t, role);
    } catch (err) {
      setError(`Could not reach the server: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <h1>Flotilla console</h1>
    <form onSubmit=${submit}>
      <label for="token">Admin or viewer token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required autofocus />
      <button type="submit" disabled=${busy}>Sign in</button>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <p class="hint">Kept for this browser tab only (session storage); closing the tab signs out.</p>
    </form>
  </main>`;
}

function LiveBadge() {
  const { state, pulse } = usePulse();
  const text = state === 'live' ? 'live' : state === 'refused' ? 'live channel refused' : 'reconnecting…';
  return html`<span class=${`live ${state}`} role="status" title=${pulse ? `last update ${new Date(pulse.at).toLocaleTimeString()}` : ''}>${text}</span>`;
}

function Shell({ role, onLogout }) {
  const { page, arg } = useHash();
  let body;
  if (page === 'task' && arg) body = html`<${Task} id=${arg} role=${role} />`;
  else if (page === 'fleet') body = html`<${Fleet} role=${role} />`;
  else if (page === 'registry') body = html`<${Registry} model=${arg} role=${role} />`;
  else if (page === 'serving') body = html`<${Serving} role=${role} />`;
  else body = html`<${Overview} role=${role} />`;
  const current = page === 'task' ? 'overview' : page;
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>Skip to content</a>
    <header>
      <span class="brand">Flotilla</span>
      <nav aria-label="Pages">
        ${PAGES.map(([k, label]) => html`<a href=${`#/${k}`} aria-current=${current === k ? 'page' : undefined}>${label}</a>`)}
      </nav>
      <span class="who"><${LiveBadge} /> <span class=${`role ${role}`}>${role}</span>
        <button type="button" onClick=${onLogout}>Sign out</button></span>
    </header>
    <main id="main" tabindex="-1">${body}</main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(null);
  const [checking, setChecking] = useState(!!currentToken());
  const [notice, setNotice] = useState(null);
  const login = (t, role) => {
    setToken(t);
    setSession({ role });
    setNotice(null);
    startLive();
  };
  const logout = (why) => {
    setToken(null);
    stopLive();
    setSession(null);
    setNotice(typeof why === 'string' ? why : null);
  };
  useEffect(() => {
    const t = currentToken();
    if (t)
      probeRole(t)
        .then((role) => (role ? login(t, role) : logout('Your token is no longer accepted; sign in again.')))
        .catch(() => logout('Could not reach the server.'))
        .finally(() => setChecking(false));
    return onApiError((err) => err.status === 401 && logout('Your token is no longer accepted; sign in again.'));
  }, []);
  if (checking) return html`<p class="loading">Checking your session…</p>`;
  if (!session) return html`<${Login} onLogin=${login} notice=${notice} />`;
  return html`<${Shell} role=${session.role} onLogout=${logout} />`;
}

render(html`<${App} />`, document.getElementById('root'));
