import { html, useState } from '../vendor/htm-preact.mjs';
import { api, enc } from '../lib/api.js';
import { Confirm, ErrorLine } from '../lib/dialog.js';
import { ago, clock } from '../lib/format.js';
import { usePoll } from '../lib/live.js';

function Detail({ id, onClose }) {
  const [d, setD] = useState(null);
  const [error, setError] = useState(null);
  usePoll(() => api(`/api/v1/clients/${enc(id)}`).then(setD, setError), 5000, [id]);
  if (!d) return html`<section class="detail"><${ErrorLine} error=${error} /></section>`;
  const byCode = {};
  for (const r of d.rejects) byCode[r.code] = (byCode[r.code] ?? 0) + 1;
  return html`<section class="detail" aria-labelledby="dev-h">
    <h2 id="dev-h">Device ${d.id} <button type="button" onClick=${onClose}>Close</button></h2>
    <p>Task ${d.taskId} · ${d.state} · first seen ${clock(d.firstSeen)} · last seen ${ago(d.lastSeen)}${d.session ? ` · backend ${d.session.backend ?? '?'}` : ''}</p>
    <h3>Rejected reports by code</h3>
    ${Object.keys(byCode).length ? html`<ul>${Object.entries(byCode).map(([c, n]) => html`<li><code>${c}</code>: ${n}</li>`)}</ul>` : html`<p>None.</p>`}
    <h3>Rounds (${d.rounds.length})</h3>
    <div class="scroll"><table><thead><tr><th scope="col">Round</th><th scope="col">Round state</th><th scope="col">Reported</th><th scope="col">Dropped</th><th scope="col">Rejected</th></tr></thead>
      <tbody>${d.rounds.slice(0, 50).map((r) => html`<tr><th scope="row">${r.round}</th><td>${r.roundState}</td><td>${r.reported ? 'yes' : 'no'}</td><td>${r.dropped ? 'yes' : 'no'}</td><td>${r.rejected.join(', ') || '–'}</td></tr>`)}</tbody>
    </table></div>
  </section>`;
}

/** Devices known to the coordinator: filter by task and state (server side), search by id (here). */
export function Fleet({ role }) {
  const [tasks, setTasks] = useState([]);
  const [filter, setFilter] = useState({ taskId: '', state: '', q: '' });
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [ask, setAsk] = useState(null);
  const [open, setOpen] = useState(null);
  const load = async () => {
    const qs = new URLSearchParams({ limit: '1000' });
    if (filter.taskId) qs.set('taskId', filter.taskId);
    if (filter.state) qs.set('state', filter.state);
    const [t, c] = await Promise.all([api('/api/v1/tasks'), api(`/api/v1/clients?${qs}`)]);
    setTasks(t.tasks.map((x) => x.id));
    setList(c);
    setError(null);
  };
  usePoll(() => load().catch(setError), 5000, [filter.taskId, filter.state]);
  const revoke = (id) =>
    setAsk({
      title: `Revoke device ${id}?`,
      text: `Device ${id} is disconnected now and refused at every later hello. Its token stays valid for other devices; revoke the token to cut the credential.`,
      confirm: 'Revoke device',
      run: () => api(`/api/v1/clients/${enc(id)}/revoke`, { method: 'POST' }).then(load, setError),
    });
  const q = filter.q.trim().toLowerCase();
  const shown = (list?.clients ?? []).filter((c) => !q || c.id.toLowerCase().includes(q));
  return html`<h1>Fleet</h1>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <label>Task <select value=${filter.taskId} onChange=${(e) => setFilter({ ...filter, taskId: e.target.value })}>
        <option value="">all</option>${tasks.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
      <label>State <select value=${filter.state} onChange=${(e) => setFilter({ ...filter, state: e.target.value })}>
        <option value="">all</option><option>connected</option><option>disconnected</option><option>revoked</option>
      </select></label>
      <label>Search <input type="search" value=${filter.q} placeholder="device id" onInput=${(e) => setFilter({ ...filter, q: e.target.value })} /></label>
    </form>
    <${ErrorLine} error=${error} />
    ${list &&
    html`<p class="muted" role="status">${shown.length} shown of ${list.total} devices${list.total > list.clients.length ? ` (first ${list.clients.length})` : ''}.</p>
      <div class="scroll"><table class="fleet">
        <thead><tr><th scope="col">Device</th><th scope="col">Task</th><th scope="col">State</th><th scope="col">Last seen</th><th scope="col">Rounds</th><th scope="col">Accepted</th><th scope="col">Rejected</th>${role === 'admin' && html`<th scope="col"><span class="sr">Actions</span></th>`}</tr></thead>
        <tbody>${shown.map((c) => html`<tr>
          <th scope="row"><button type="button" class="link" onClick=${() => setOpen(c.id)}>${c.id}</button></th>
          <td>${c.taskId}</td><td><span class=${`state ${c.state}`}>${c.state}</span></td><td>${ago(c.lastSeen)}</td>
          <td>${c.roundsJoined}</td><td>${c.reportsAccepted}</td><td>${c.reportsRejected}</td>
          ${role === 'admin' && html`<td>${c.state !== 'revoked' && html`<button type="button" class="danger" onClick=${() => revoke(c.id)}>Revoke…</button>`}</td>`}
        </tr>`)}</tbody>
      </table></div>`}
    ${open && html`<${Detail} id=${open} onClose=${() => setOpen(null)} />`}
    <${Confirm} ask=${ask} onClose=${() => setAsk(null)} />`;
}
