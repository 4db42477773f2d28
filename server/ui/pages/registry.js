import { html, useState } from '../vendor/htm-preact.mjs';
import { api, enc } from '../lib/api.js';
import { LineChart } from '../lib/chart.js';
import { Confirm, ErrorLine } from '../lib/dialog.js';
import { bytes, dateTime, pct, num } from '../lib/format.js';
import { useLive, usePoll } from '../lib/live.js';

const VARIANT_OF = { weights: 'float32', 'weights.float16': 'float16', 'weights.int8': 'int8', 'weights.pruned': 'pruned' };

/**
 * What a rollback would do, from the alias history (newest first), to name it in the
 * confirmation: history is a stack (server/src/registry/alias-rules.ts), each rollback undoing
 * the newest change not yet undone. Returns { from, to } or null when nothing is left to undo.
 */
export function rollbackPreview(history) {
  const undoable = [];
  for (const h of history.slice().reverse()) {
    if (h.from === h.to) continue;
    if (h.action === 'rollback') undoable.pop();
    else undoable.push(h);
  }
  const top = undoable[undoable.length - 1];
  return top ? { from: top.to, to: top.from } : null;
}

const vname = (v) => (v === null || v === undefined ? 'nothing (alias removed)' : `version ${v}`);

function Variants({ model, version }) {
  const [v, setV] = useState(null);
  usePoll(() => api(`/api/v1/models/${enc(model)}/versions/${version}`).then(setV), 60_000, [model, version]);
  if (!v) return null;
  return html`<section aria-labelledby="var-h" class="detail">
    <h3 id="var-h">Version ${version}: variants</h3>
    <p class="muted">Task ${v.taskId ?? '–'}, round ${v.round ?? '–'}, parent ${v.parentVersion ?? '–'}; aliases: ${v.aliases.join(', ') || 'none'}</p>
    <table><thead><tr><th scope="col">Variant</th><th scope="col">Stored size</th><th scope="col">Accuracy</th><th scope="col">Loss</th></tr></thead>
      <tbody>${v.artifacts.map((a) => {
        const name = VARIANT_OF[a.name] ?? a.name;
        const prefix = name === 'float32' ? '' : `${name}_`;
        return html`<tr><th scope="row">${name}</th><td>${bytes(a.size)}</td><td>${pct(v.metrics[`${prefix}accuracy`])}</td><td>${num(v.metrics[`${prefix}loss`])}</td></tr>`;
      })}</tbody></table>
  </section>`;
}

export function Registry({ model: wanted, role }) {
  const [models, setModels] = useState(null);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [ask, setAsk] = useState(null);
  const [picked, setPicked] = useState(null);
  const [form, setForm] = useState({ alias: 'production', version: '' });
  const admin = role === 'admin';
  const model = wanted ?? models?.[0]?.name ?? null;

  const load = async () => {
    const ms = (await api('/api/v1/models')).models;
    setModels(ms);
    const name = wanted ?? ms[0]?.name;
    if (!name) return setData(null);
    const [m, vs] = await Promise.all([api(`/api/v1/models/${enc(name)}`), api(`/api/v1/models/${enc(name)}/versions?limit=100`)]);
    const histories = await Promise.all(m.aliases.map((a) => api(`/api/v1/models/${enc(name)}/aliases/${enc(a.alias)}/history`).then((h) => [a.alias, h.history])));
    setData({ name, aliases: m.aliases, versions: vs.versions, history: Object.fromEntries(histories) });
    setError(null);
  };
  usePoll(() => load().catch(setError), 10_000, [wanted]);
  useLive((e) => e === 'round' && load().catch(setError));

  const promote = (e) => {
    e.preventDefault();
    const alias = form.alias.trim();
    const version = Number(form.version);
    if (!alias || !version) return setError({ message: 'Choose an alias name and a version.' });
    const cur = data.aliases.find((a) => a.alias === alias);
    setAsk({
      title: `Promote ${data.name} to ${alias}?`,
      text: cur ? `Move alias ${alias} of ${data.name} from version ${cur.version} to version ${version}.` : `Create alias ${alias} of ${data.name} at version ${version}.`,
      confirm: `Move ${alias} to version ${version}`,
      run: () => api(`/api/v1/models/${enc(data.name)}/aliases/${enc(alias)}`, { method: 'PUT', body: { version } }).then(load, setError),
    });
  };
  const rollback = (alias) => {
    const p = rollbackPreview(data.history[alias] ?? []);
    if (!p) return setError({ code: 'FL_ERR_ALIAS_NO_PREVIOUS', message: `Alias ${alias} has no change left to undo.` });
    setAsk({
      title: `Roll back ${alias}?`,
      text: `Move alias ${alias} of ${data.name} back from ${vname(p.from)} to ${vname(p.to)}.`,
      confirm: `Roll back to ${p.to === null ? 'no alias' : `version ${p.to}`}`,
      run: () => api(`/api/v1/models/${enc(data.name)}/aliases/${enc(alias)}/rollback`, { method: 'POST' }).then(load, setError),
    });
  };

  if (!models) return html`<h1>Registry</h1><${ErrorLine} error=${error} />${!error && html`<p class="loading">Loading…</p>`}`;
  const byVersion = {};
  for (const a of data?.aliases ?? []) (byVersion[a.version] ??= []).push(a.alias);
  const asc = (data?.versions ?? []).slice().reverse();
  return html`<h1>Registry</h1>
    <nav class="models" aria-label="Models">${models.map((m) => html`<a href=${`#/registry/${enc(m.name)}`} aria-current=${m.name === model ? 'page' : undefined}>${m.name} <span class="muted">v${m.latestVersion ?? '–'}</span></a>`)}</nav>
    <${ErrorLine} error=${error} />
    ${!data
      ? html`<p class="empty">No models yet.</p>`
      : html`<section aria-labelledby="alias-h">
          <h2 id="alias-h">Aliases of ${data.name}</h2>
          <div class="scroll"><table class="aliases">
            <thead><tr><th scope="col">Alias</th><th scope="col">Version</th><th scope="col">Updated</th><th scope="col">By</th><th scope="col">History (newest first)</th>${admin && html`<th scope="col"><span class="sr">Actions</span></th>`}</tr></thead>
            <tbody>${data.aliases.map((a) => html`<tr data-alias=${a.alias}>
              <th scope="row">${a.alias}</th><td class="alias-version">${a.version}</td><td>${dateTime(a.updatedAt)}</td><td>${a.updatedBy}</td>
              <td><ol class="history">${(data.history[a.alias] ?? []).slice(0, a.alias === 'latest' ? 3 : 8).map((h) => html`<li>${h.action ?? 'set'} ${h.from ?? '∅'} → ${h.to ?? '∅'} <span class="muted">${dateTime(h.at)} by ${h.by}</span></li>`)}</ol></td>
              ${admin && html`<td>${a.alias !== 'latest' && html`<button type="button" onClick=${() => rollback(a.alias)}>Roll back…</button>`}</td>`}
            </tr>`)}</tbody>
          </table></div>
          ${admin &&
          html`<form class="promote" onSubmit=${promote}>
            <span class="field"><label for="promote-alias">Alias</label><input id="promote-alias" name="alias" list="alias-names" value=${form.alias} onInput=${(e) => setForm({ ...form, alias: e.target.value })} /></span>
            <datalist id="alias-names">${data.aliases.filter((a) => a.alias !== 'latest').map((a) => html`<option value=${a.alias} />`)}</datalist>
            <span class="field"><label for="promote-version">Version</label><select id="promote-version" name="version" value=${form.version} onChange=${(e) => setForm({ ...form, version: e.target.value })}>
              <option value="">choose…</option>${data.versions.map((v) => html`<option value=${v.version}>${v.version}${v.metrics.accuracy !== undefined ? ` (${pct(v.metrics.accuracy)})` : ''}</option>`)}
            </select></span>
            <button type="submit">Promote…</button>
          </form>`}
        </section>
        <${LineChart} title="Accuracy by version (central evaluation)" xLabel="version" yFormat=${pct} series=${[
          { name: 'float32', points: asc.map((v) => ({ x: v.version, y: v.metrics.accuracy })) },
          { name: 'int8', points: asc.map((v) => ({ x: v.version, y: v.metrics.int8_accuracy })) },
        ]} />
        <section aria-labelledby="ver-h">
          <h2 id="ver-h">Versions</h2>
          <div class="scroll"><table class="versions">
            <thead><tr><th scope="col">Version</th><th scope="col">Created</th><th scope="col">Task / round</th><th scope="col">Parent</th><th scope="col">Accuracy</th><th scope="col">Loss</th><th scope="col">Participants</th><th scope="col">Aliases</th></tr></thead>
            <tbody>${data.versions.map((v) => html`<tr aria-selected=${picked === v.version ? 'true' : undefined}>
              <th scope="row"><button type="button" class="link" onClick=${() => setPicked(v.version)}>${v.version}</button></th>
              <td>${dateTime(v.createdAt)}</td><td>${v.taskId ? `${v.taskId} / ${v.round ?? '–'}` : '–'}</td><td>${v.parentVersion ?? '–'}</td>
              <td>${pct(v.metrics.accuracy)}</td><td>${num(v.metrics.loss)}</td><td>${v.metrics.participants ?? '–'}</td><td>${(byVersion[v.version] ?? []).join(', ')}</td>
            </tr>`)}</tbody>
          </table></div>
        </section>
        ${picked && html`<${Variants} model=${data.name} version=${picked} />`}`}
    <${Confirm} ask=${ask} onClose=${() => setAsk(null)} />`;
}
