import { html, useRef, useState } from '../vendor/htm-preact.mjs';
import { api, enc } from '../lib/api.js';
import { Bar, LineChart } from '../lib/chart.js';
import { ErrorLine } from '../lib/dialog.js';
import { bytes, clock, ms, num, pct } from '../lib/format.js';
import { usePoll } from '../lib/live.js';

const POLL_MS = 2000;
/** Latency samples kept per deployment (one per poll: 10 minutes at 2 s). */
const KEEP = 300;

function Arms({ s }) {
  const arms = s.bandit?.arms ?? [];
  return html`<div class="scroll"><table class="arms" data-deployment=${s.deployment}>
    <thead><tr><th scope="col">Target</th><th scope="col">Version</th>${s.mode === 'split' && html`<th scope="col">Weight</th>`}${s.mode === 'shadow' && html`<th scope="col">Role</th>`}<th scope="col">Traffic share</th><th scope="col">Requests</th><th scope="col">Errors</th><th scope="col">p50</th><th scope="col">p95</th><th scope="col">p99</th><th scope="col">Cold start</th>${s.bandit && html`<th scope="col">Posterior mean</th><th scope="col">Mean reward</th><th scope="col">Feedback</th>`}</tr></thead>
    <tbody>${s.versions.map((v) => {
      const arm = arms.find((a) => a.key === v.target);
      return html`<tr data-target=${v.target}>
        <th scope="row">${v.target}${v.routed ? '' : ' (no longer routed)'}</th><td>${v.currentVersion ?? '–'}</td>
        ${s.mode === 'split' && html`<td>${v.weight ?? '–'}</td>`}${s.mode === 'shadow' && html`<td>${v.role}</td>`}
        <td class="share"><${Bar} value=${v.share} label=${pct(v.share)} /></td><td class="requests">${v.requests}</td><td>${v.errors}</td>
        <td class="p50">${ms(v.latencyMs.total.p50)}</td><td class="p95">${ms(v.latencyMs.total.p95)}</td><td class="p99">${ms(v.latencyMs.total.p99)}</td>
        <td>${v.coldStartMs !== null ? ms(v.coldStartMs) : '–'}</td>
        ${s.bandit && html`<td>${arm ? num(arm.posteriorMean, 3) : '–'}</td><td>${arm && arm.meanReward !== null ? num(arm.meanReward, 3) : '–'}</td><td>${arm ? arm.rewards : '–'}</td>`}
      </tr>`;
    })}</tbody>
  </table></div>`;
}

function Deployment({ d, s, samples, drift }) {
  if (!s) return html`<section class="card"><h2>${d.name}</h2><p class="error">Statistics unavailable.</p></section>`;
  const over = s.errorsByCode.FL_ERR_SERVING_OVERLOADED ?? 0;
  const timeouts = s.errorsByCode.FL_ERR_SERVING_TIMEOUT ?? 0;
  const t = s.latencyMs.total;
  return html`<section class="card" aria-labelledby=${`dep-${d.name}`} data-deployment=${d.name}>
    <h2 id=${`dep-${d.name}`}>${d.name} <span class="muted">${d.model} · ${s.mode}${s.bandit ? ` (${s.bandit.algorithm})` : ''}</span></h2>
    <dl class="figures">
      <div><dt>Requests</dt><dd class="total-requests">${s.requests}</dd></div>
      <div><dt>Throughput (60 s)</dt><dd>${num(s.throughput, 1)} req/s</dd></div>
      <div><dt>p50 / p95 / p99</dt><dd class="latency">${ms(t.p50)} / ${ms(t.p95)} / ${ms(t.p99)}</dd></div>
      <div><dt>429 (queue full)</dt><dd>${over}</dd></div>
      <div><dt>Timeouts (504)</dt><dd>${timeouts}</dd></div>
      <div><dt>Error rate</dt><dd>${pct(s.errorRate)}</dd></div>
    </dl>
    <${Arms} s=${s} />
    ${s.shadow &&
    html`<p class="shadow">Shadow ${s.shadow.target} (${s.shadow.percent}% mirrored): agreement <strong>${pct(s.shadow.agreement)}</strong> over ${s.shadow.rowsCompared} rows, mean |difference| ${num(s.shadow.meanAbsDiff, 5)}, latency difference p50 ${ms(s.shadow.latencyDiffMs.p50)}, p95 ${ms(s.shadow.latencyDiffMs.p95)}; ${s.shadow.failed} failed.</p>`}
    <${LineChart} title=${`Latency of ${d.name} since this page opened`} xLabel="time" xFormat=${clock} xTicks=${4} yLabel="ms" yMin=${0} yFormat=${(v) => ms(v)} series=${[
      { name: 'p50', points: samples.map((x) => ({ x: x.at, y: x.p50 })) },
      { name: 'p95', points: samples.map((x) => ({ x: x.at, y: x.p95 })) },
      { name: 'p99', points: samples.map((x) => ({ x: x.at, y: x.p99 })) },
    ]} />
    <h3>Input drift (payload log against the version's reference)</h3>
    ${drift.length === 0
      ? html`<p>No drift summary yet.</p>`
      : html`<table><thead><tr><th scope="col">Version</th><th scope="col">Status</th><th scope="col">Drifted features</th><th scope="col">Mean |shift|</th><th scope="col">Reference</th><th scope="col">Rows (reference / logged)</th></tr></thead><tbody>
          ${drift.map((x) => html`<tr><th scope="row">${x.version}</th><td><span class=${`state ${x.status}`}>${x.status}</span></td><td>${x.driftedFeatures} of ${x.features} (${pct(x.driftedFraction)})</td><td>${num(x.meanAbsShift, 3)}</td><td>${x.source}</td><td>${x.referenceCount} / ${x.currentCount}</td></tr>`)}
        </tbody></table>`}
  </section>`;
}

export function Serving() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const history = useRef(new Map());
  const drift = useRef({ at: 0, byModel: new Map() });
  const load = async () => {
    const { deployments } = await api('/api/v1/deployments');
    const stats = await Promise.all(deployments.map((d) => api(`/api/v1/deployments/${enc(d.name)}/stats`).catch(() => null)));
    const loaded = await api('/api/v1/serving');
    const now = Date.now();
    deployments.forEach((d, i) => {
      const s = stats[i];
      if (!s) return;
      const h = history.current.get(d.name) ?? [];
      h.push({ at: now, ...s.latencyMs.total });
      history.current.set(d.name, h.slice(-KEEP));
    });
    if (now - drift.current.at > 10_000) {
      drift.current.at = now;
      for (const [i, d] of deployments.entries()) {
        const versions = [...new Set((stats[i]?.versions ?? []).map((v) => v.currentVersion).filter((v) => v !== null))];
        const rows = await Promise.all(versions.map((v) => api(`/api/v1/models/${enc(d.model)}/drift?version=${v}`).then((x) => ({ version: v, source: x.reference?.source ?? 'none yet', ...x.summary }), () => null)));
        drift.current.byModel.set(d.name, rows.filter(Boolean));
      }
    }
    setData({ deployments: deployments.map((d, i) => ({ d, s: stats[i] })), loaded });
    setError(null);
  };
  usePoll(() => load().catch(setError), POLL_MS);
  if (!data) return html`<h1>Serving</h1><${ErrorLine} error=${error} />${!error && html`<p class="loading">Loading…</p>`}`;
  return html`<h1>Serving</h1>
    <${ErrorLine} error=${error} />
    ${data.deployments.length === 0 && html`<p class="empty">No deployments (create one with POST /api/v1/deployments).</p>`}
    ${data.deployments.map(({ d, s }) => html`<${Deployment} d=${d} s=${s} samples=${history.current.get(d.name) ?? []} drift=${drift.current.byModel.get(d.name) ?? []} />`)}
    <section aria-labelledby="loaded-h">
      <h2 id="loaded-h">Loaded versions (${data.loaded.backend} backend, ${bytes(data.loaded.totalBytes)} of ${bytes(data.loaded.maxBytes)})</h2>
      <div class="scroll"><table>
        <thead><tr><th scope="col">Model</th><th scope="col">Version</th><th scope="col">Variant</th><th scope="col">Size</th><th scope="col">Cold start</th><th scope="col">Requests</th><th scope="col">p99</th></tr></thead>
        <tbody>${data.loaded.models.map((m) => html`<tr><th scope="row">${m.model}</th><td>${m.version}</td><td>${m.variant ?? 'float32'}</td><td>${bytes(m.bytes)}</td><td>${ms(m.coldStartMs.total)}</td><td>${m.requests}</td><td>${ms(m.latencyMs.total.p99)}</td></tr>`)}</tbody>
      </table></div>
    </section>`;
}
