import { html, useEffect, useState } from '../vendor/htm-preact.mjs';
import { api, enc } from '../lib/api.js';
import { LineChart, Bar } from '../lib/chart.js';
import { Confirm, ErrorLine } from '../lib/dialog.js';
import { bytes, clock, duration, num, pct } from '../lib/format.js';
import { useLive, usePulse } from '../lib/live.js';
import { Timeline } from '../lib/timeline.js';

/** Rounds whose detail (rejections by code, federated evaluation, deadline) the page fetches. */
const DETAILED = 20;

const pts = (rounds, f) => rounds.map((r) => ({ x: r.round, y: f(r) }));

/** Top-level plan fields that differ: changed values, and null for removed ones (PATCH semantics). */
export function planPatch(before, after) {
  const patch = {};
  for (const k of Object.keys(after)) if (JSON.stringify(after[k]) !== JSON.stringify(before[k])) patch[k] = after[k];
  for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
  return patch;
}

function PlanEditor({ task, onSaved }) {
  const [text, setText] = useState(JSON.stringify(task.plan, null, 2));
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  useEffect(() => setText(JSON.stringify(task.plan, null, 2)), [JSON.stringify(task.plan)]);
  const save = async (e) => {
    e.preventDefault();
    setSaved(null);
    let next;
    try {
      next = JSON.parse(text);
    } catch (err) {
      return setError({ message: `Not JSON: ${err.message}` });
    }
    const patch = planPatch(task.plan, next);
    if (Object.keys(patch).length === 0) return setError({ message: 'Nothing changed.' });
    try {
      onSaved(await api(`/api/v1/tasks/${enc(task.id)}/plan`, { method: 'PATCH', body: patch }));
      setError(null);
      setSaved(`Saved ${Object.keys(patch).join(', ')}; applies from the next round.`);
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="plan-edit" onSubmit=${save}>
    <label for="plan-text">Plan (JSON; changed fields are sent, removed optional ones cleared; strategy, screening and seed are fixed)</label>
    <textarea id="plan-text" rows="12" spellcheck="false" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
    <button type="submit">Save plan</button>
    <${ErrorLine} error=${error} />${saved && html`<p class="ok" role="status">${saved}</p>`}
  </form>`;
}

/**
 * The round in flight, from the live pulse: its counts and the reports arriving over time. Its own
 * component, so that the pulse every second re-renders this and not the whole page's charts.
 */
function LiveRound({ id }) {
  const { pulse } = usePulse();
  const [arrivals, setArrivals] = useState({ round: null, points: [] });
  useLive((event, data) => {
    if (event !== 'pulse') return;
    const r = data.tasks.find((t) => t.id === id)?.round;
    if (r) setArrivals((a) => ({ round: r.round, points: [...(a.round === r.round ? a.points : []), { x: (data.at - r.startedAt) / 1000, y: r.reported }].slice(-300) }));
  });
  const live = pulse?.tasks.find((t) => t.id === id);
  const r = live?.round ?? null;
  return html`<section class="live-round" aria-live="polite">
      ${live && html`<p>${live.connectedDevices} devices connected.</p>`}
      ${r
        ? html`<p><strong>Round ${r.round}</strong> ${r.state}: ${r.reported} of ${r.selected} selected reported, ${r.rejected} rejected, ${r.dropped} dropped; started ${clock(r.startedAt)}, deadline ${clock(r.deadline)}.</p>`
        : html`<p>No round in flight.</p>`}
    </section>
    ${r && arrivals.round === r.round &&
    html`<${LineChart} title=${`Reports arriving in round ${r.round}`} xLabel="seconds since selection" xFormat=${(v) => num(v, 1)} yMin=${0} yFormat=${(v) => num(v, 0)} series=${[{ name: 'reported', points: arrivals.points }]} />`}`;
}

export function Task({ id, role }) {
  const [task, setTask] = useState(null);
  const [rounds, setRounds] = useState([]);
  const [details, setDetails] = useState({});
  const [error, setError] = useState(null);
  const [ask, setAsk] = useState(null);
  const admin = role === 'admin';

  const fetchDetail = async (n) => {
    const d = await api(`/api/v1/tasks/${enc(id)}/rounds/${n}`);
    setDetails((m) => ({ ...m, [n]: d }));
  };
  useEffect(() => {
    let cancelled = false;
    setTask(null), setRounds([]), setDetails({}), setError(null);
    (async () => {
      try {
        const [t, page] = await Promise.all([api(`/api/v1/tasks/${enc(id)}`), api(`/api/v1/tasks/${enc(id)}/rounds?limit=1000`)]);
        const list = page.rounds.slice().reverse();
        if (cancelled) return;
        setTask(t), setRounds(list);
        await Promise.all(list.slice(-DETAILED).map((r) => fetchDetail(r.round)));
      } catch (err) {
        if (!cancelled) setError(err);
      }
    })();
    return () => (cancelled = true);
  }, [id]);

  useLive((event, data) => {
    if (event === 'task' && data.id === id) setTask(data);
    else if (event === 'round' && data.taskId === id) {
      setRounds((rs) => [...rs.filter((r) => r.round !== data.round), data].sort((a, b) => a.round - b.round));
      fetchDetail(data.round).catch(() => {});
    } else if (event === 'evaluation' && data.taskId === id) {
      setDetails((m) => (m[data.round] ? { ...m, [data.round]: { ...m[data.round], evalMetrics: data.metrics } } : m));
    }
  });

  const act = async (action) => {
    try {
      setTask(await api(`/api/v1/tasks/${enc(id)}/${action}`, { method: 'POST' }));
      setError(null);
    } catch (err) {
      setError(err);
    }
  };

  if (!task) return html`<h1>Task ${id}</h1><${ErrorLine} error=${error} />${!error && html`<p class="loading">Loading…</p>`}`;
  const state = task.state;
  const rows = rounds.map((r) => ({ ...r, ...(details[r.round] ? { deadline: details[r.round].deadline, aggregationMs: details[r.round].aggregationMs, evalMetrics: details[r.round].evalMetrics } : {}) }));
  const ended = rows.filter((r) => r.state === 'done' || r.state === 'failed');
  const byCode = {};
  for (const d of Object.values(details)) for (const [code, n] of Object.entries(d.rejectedByCode ?? {})) byCode[code] = (byCode[code] ?? 0) + n;
  const failed = ended.filter((r) => r.state === 'failed');
  const maxCode = Math.max(1, ...Object.values(byCode));
  const totalUp = rows.reduce((n, r) => n + r.bytesUp, 0);
  const totalDown = rows.reduce((n, r) => n + r.bytesDown, 0);

  return html`<h1>Task ${task.id} <span class=${`state ${state}`}>${state}</span></h1>
    ${task.stateReason && html`<p class="muted">${task.stateReason}</p>`}
    <p class="muted">Model <a href=${`#/registry/${enc(task.modelName)}`}>${task.modelName}</a> v${task.currentVersion} · ${num(task.parameters)} parameters · strategy ${task.plan.strategy?.name ?? 'fedavg'}${task.plan.strategy && Object.keys(task.plan.strategy.params ?? {}).length ? ` ${JSON.stringify(task.plan.strategy.params)}` : ''}</p>
    <${ErrorLine} error=${error} />
    ${admin &&
    html`<div class="actions" role="group" aria-label="Task actions">
      ${state === 'created' && html`<button type="button" onClick=${() => act('start')}>Start</button>`}
      ${state === 'running' && html`<button type="button" onClick=${() => act('pause')}>Pause</button>`}
      ${state === 'paused' && html`<button type="button" onClick=${() => act('resume')}>Resume</button>`}
      ${(state === 'running' || state === 'paused' || state === 'created') &&
      html`<button type="button" class="danger" onClick=${() => setAsk({ title: `Stop task ${id}?`, text: `Task ${id} stops for good after round ${task.nextRound - 1}; it cannot be resumed.`, confirm: 'Stop task', run: () => act('stop') })}>Stop…</button>`}
    </div>`}
    <${LiveRound} id=${id} />
    <div class="grid">
      <${LineChart} title="Accuracy" yLabel="accuracy" yFormat=${(v) => pct(v)} series=${[
        { name: 'central (server test set)', points: pts(ended, (r) => r.centralMetrics.accuracy) },
        { name: 'federated evaluation', points: pts(ended, (r) => r.evalMetrics?.accuracy) },
        { name: 'device training', points: pts(ended, (r) => r.trainMetrics.accuracy) },
      ]} />
      <${LineChart} title="Loss" yLabel="loss" series=${[
        { name: 'central (server test set)', points: pts(ended, (r) => r.centralMetrics.loss) },
        { name: 'federated evaluation', points: pts(ended, (r) => r.evalMetrics?.loss) },
        { name: 'device training', points: pts(ended, (r) => r.trainMetrics.loss) },
      ]} />
      <${LineChart} title="Participants per round" yLabel="devices" yMin=${0} yFormat=${(v) => num(v, 1)} series=${[
        { name: 'selected', points: pts(rows, (r) => r.selected) },
        { name: 'reported', points: pts(rows, (r) => r.reported) },
        { name: 'dropped', points: pts(rows, (r) => r.dropped) },
        { name: 'rejected', points: pts(rows, (r) => r.rejected) },
      ]} />
      <${LineChart} title=${`Bytes per round (total up ${bytes(totalUp)}, down ${bytes(totalDown)})`} yLabel="bytes" yMin=${0} yFormat=${bytes} series=${[
        { name: 'up (device updates)', points: pts(ended, (r) => r.bytesUp) },
        { name: 'down (global model)', points: pts(ended, (r) => r.bytesDown) },
      ]} />
      <${Timeline} rounds=${rows.slice(-20).reverse()} now=${Date.now()} />
    </div>
    <section aria-labelledby="fail-h">
      <h2 id="fail-h">Failures</h2>
      <h3>Rejected reports by code (latest ${DETAILED} rounds)</h3>
      ${Object.keys(byCode).length === 0
        ? html`<p>None.</p>`
        : html`<table class="codes"><thead><tr><th scope="col">Code</th><th scope="col">Reports</th></tr></thead><tbody>
            ${Object.entries(byCode).sort((a, b) => b[1] - a[1]).map(([code, n]) => html`<tr><th scope="row"><code>${code}</code></th><td><${Bar} value=${n} max=${maxCode} label=${String(n)} /></td></tr>`)}
          </tbody></table>`}
      <h3>Failed rounds</h3>
      ${failed.length === 0 ? html`<p>None.</p>` : html`<ul>${failed.slice(-10).map((r) => html`<li>Round ${r.round}: ${r.failureReason}</li>`)}</ul>`}
    </section>
    <section aria-labelledby="rounds-h">
      <h2 id="rounds-h">Rounds</h2>
      <div class="scroll"><table class="rounds">
        <thead><tr><th scope="col">Round</th><th scope="col">State</th><th scope="col">Selected</th><th scope="col">Reported</th><th scope="col">Dropped</th><th scope="col">Rejected</th><th scope="col">Duration</th><th scope="col">Up</th><th scope="col">Down</th><th scope="col">Version</th><th scope="col">Accuracy</th></tr></thead>
        <tbody>${rows.slice(-50).reverse().map((r) => html`<tr>
          <th scope="row">${r.round}</th><td>${r.state}</td><td>${r.selected}</td><td>${r.reported}</td><td>${r.dropped}</td><td>${r.rejected}</td>
          <td>${duration(r.durationMs)}</td><td>${bytes(r.bytesUp)}</td><td>${bytes(r.bytesDown)}</td><td>${r.committedVersion ?? '–'}</td><td>${pct(r.centralMetrics.accuracy)}</td>
        </tr>`)}</tbody>
      </table></div>
    </section>
    <section aria-labelledby="plan-h">
      <h2 id="plan-h">Plan and strategy</h2>
      ${admin ? html`<${PlanEditor} task=${task} onSaved=${setTask} />` : html`<pre class="plan">${JSON.stringify(task.plan, null, 2)}</pre>`}
    </section>
    <${Confirm} ask=${ask} onClose=${() => setAsk(null)} />`;
}
