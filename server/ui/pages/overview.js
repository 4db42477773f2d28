import { html, useState } from '../vendor/htm-preact.mjs';
import { api, enc } from '../lib/api.js';
import { ErrorLine } from '../lib/dialog.js';
import { ms, pct, num, ago } from '../lib/format.js';
import { useLive, usePoll, usePulse } from '../lib/live.js';

const WINDOW_MIN = 5;

/** Committed rounds per minute over the last WINDOW_MIN minutes of a newest-first round list. */
function roundsPerMinute(rounds, now) {
  const recent = rounds.filter((r) => r.state === 'done' && r.endedAt && now - r.endedAt <= WINDOW_MIN * 60_000);
  return recent.length / WINDOW_MIN;
}

async function loadOverview() {
  const { tasks } = await api('/api/v1/tasks');
  const perTask = await Promise.all(
    tasks.map(async (t) => {
      const [rounds, versions] = await Promise.all([
        api(`/api/v1/tasks/${enc(t.id)}/rounds?limit=50`).then((x) => x.rounds),
        api(`/api/v1/models/${enc(t.modelName)}/versions?limit=1`).then((x) => x.versions).catch(() => []),
      ]);
      return { task: t, rounds, latest: versions[0] ?? null };
    }),
  );
  const { deployments } = await api('/api/v1/deployments');
  const stats = await Promise.all(deployments.map((d) => api(`/api/v1/deployments/${enc(d.name)}/stats`).catch(() => null)));
  return { perTask, deployments: deployments.map((d, i) => ({ d, s: stats[i] })), at: Date.now() };
}

/** What needs a look first: failed tasks and rounds, serving errors. */
function attention(data) {
  const out = [];
  for (const { task, rounds } of data.perTask) {
    if (task.state === 'failed') out.push(`Task ${task.id} failed: ${task.stateReason ?? 'no reason recorded'}`);
    const last = rounds[0];
    if (last && last.state === 'failed') out.push(`Task ${task.id}: round ${last.round} failed (${last.failureReason ?? 'no reason'})`);
  }
  for (const { d, s } of data.deployments) {
    if (!s) continue;
    const over = s.errorsByCode.FL_ERR_SERVING_OVERLOADED ?? 0;
    const timeouts = s.errorsByCode.FL_ERR_SERVING_TIMEOUT ?? 0;
    if (over) out.push(`Deployment ${d.name}: ${over} requests refused with 429 (queue full)`);
    if (timeouts) out.push(`Deployment ${d.name}: ${timeouts} requests timed out (504)`);
    const other = s.errors - over - timeouts;
    if (other > 0) out.push(`Deployment ${d.name}: ${other} other errors (${pct(s.errorRate)} of requests failed)`);
  }
  return out;
}

export function Overview() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const { pulse } = usePulse();
  const reload = () => loadOverview().then((d) => (setData(d), setError(null)), setError);
  usePoll(reload, 5000);
  useLive((e) => (e === 'round' || e === 'task') && reload());
  const live = new Map((pulse?.tasks ?? []).map((t) => [t.id, t]));
  if (!data) return html`<h1>Overview</h1><${ErrorLine} error=${error} />${!error && html`<p class="loading">Loading…</p>`}`;
  const issues = attention(data);
  return html`<h1>Overview</h1>
    <${ErrorLine} error=${error} />
    <section aria-labelledby="att" class=${issues.length ? 'attention bad' : 'attention ok'}>
      <h2 id="att">Needs attention</h2>
      ${issues.length ? html`<ul>${issues.map((x) => html`<li>${x}</li>`)}</ul>` : html`<p>Nothing failing.</p>`}
    </section>
    <section aria-labelledby="tasks-h">
      <h2 id="tasks-h">Training tasks</h2>
      ${data.perTask.length === 0
        ? html`<p class="empty">No tasks yet (create one with <code>flotilla tasks create</code>).</p>`
        : html`<div class="scroll"><table class="tasks">
            <thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Devices</th><th scope="col">Round in flight</th><th scope="col">Rounds/min (${WINDOW_MIN} min)</th><th scope="col">Latest version</th><th scope="col">Accuracy</th></tr></thead>
            <tbody>${data.perTask.map(({ task, rounds, latest }) => {
              const l = live.get(task.id);
              const r = l?.round;
              return html`<tr>
                <th scope="row"><a href=${`#/task/${enc(task.id)}`}>${task.id}</a></th>
                <td><span class=${`state ${l?.state ?? task.state}`}>${l?.state ?? task.state}</span></td>
                <td>${l?.connectedDevices ?? task.connectedDevices}</td>
                <td>${r ? `#${r.round} ${r.state}: ${r.reported}/${r.selected} reported` : '–'}</td>
                <td>${num(roundsPerMinute(rounds, data.at), 1)}</td>
                <td>${latest ? html`<a href=${`#/registry/${enc(task.modelName)}`}>${task.modelName} v${latest.version}</a> <span class="muted">${ago(latest.createdAt)}</span>` : '–'}</td>
                <td>${latest ? pct(latest.metrics.accuracy) : '–'}</td>
              </tr>`;
            })}</tbody>
          </table></div>`}
    </section>
    <section aria-labelledby="serv-h">
      <h2 id="serv-h">Serving</h2>
      ${data.deployments.length === 0
        ? html`<p class="empty">No deployments.</p>`
        : html`<div class="scroll"><table>
            <thead><tr><th scope="col">Deployment</th><th scope="col">Model</th><th scope="col">Mode</th><th scope="col">Requests</th><th scope="col">Throughput</th><th scope="col">p99</th><th scope="col">Errors</th></tr></thead>
            <tbody>${data.deployments.map(({ d, s }) => html`<tr>
              <th scope="row"><a href="#/serving">${d.name}</a></th><td>${d.model}</td><td>${d.routing.mode}</td>
              <td>${s ? s.requests : '–'}</td><td>${s ? `${num(s.throughput, 1)} req/s` : '–'}</td>
              <td>${s ? ms(s.latencyMs.total.p99) : '–'}</td><td>${s ? `${s.errors} (${pct(s.errorRate)})` : '–'}</td>
            </tr>`)}</tbody>
          </table></div>`}
    </section>`;
}
