import { html } from '../vendor/htm-preact.mjs';
import { num } from './format.js';

/**
 * Small SVG charts drawn by preact (no inline styles: colours come from console.css classes, so
 * the strict CSP holds). Every chart carries its numbers: a hover title on each point and a data
 * table under a disclosure, which is the text alternative a screen reader reads.
 */

/** About `count` tick values over [lo, hi] at a 1/2/2.5/5 x 10^k step (the same rule as the simulator's SVG charts). */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

const W = 640;
const M = { l: 78, r: 30, t: 12, b: 36 };

/**
 * series: [{ name, points: [{ x, y }] }] (y null or undefined = no value). Axes fit the data;
 * yMin / yMax pin an end. `data-points` on the figure counts the plotted points (tests read it).
 */
export function LineChart({ title, series, xLabel = 'round', yLabel = '', yFormat = (v) => num(v, 3), xFormat = (v) => String(v), yMin, yMax, height = 220, xTicks = 8 }) {
  const H = height;
  const clean = series.map((s) => ({ ...s, points: s.points.filter((p) => p.y !== null && p.y !== undefined && Number.isFinite(p.y)) }));
  const all = clean.flatMap((s) => s.points);
  const total = all.length;
  let x0 = Math.min(...all.map((p) => p.x));
  let x1 = Math.max(...all.map((p) => p.x));
  let y0 = yMin ?? Math.min(...all.map((p) => p.y));
  let y1 = yMax ?? Math.max(...all.map((p) => p.y));
  if (!(x1 > x0)) (x0 -= 1), (x1 += 1);
  if (!(y1 > y0)) (y0 -= y0 === 0 ? 0 : Math.abs(y0) * 0.1 + 0.01), (y1 += Math.abs(y1) * 0.1 + 0.01);
  const pw = W - M.l - M.r;
  const ph = H - M.t - M.b;
  const sx = (x) => M.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y) => M.t + ph - ((y - y0) / (y1 - y0)) * ph;
  const xs = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
  return html`<figure class="chart" data-points=${total} aria-label=${title}>
    <figcaption>${title}</figcaption>
    ${total === 0
      ? html`<p class="empty">No data yet.</p>`
      : html`<svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`${title}: ${clean.map((s) => `${s.name} ${s.points.length ? yFormat(s.points[s.points.length - 1].y) : 'no data'}`).join(', ')}`}>
          ${ticks(y0, y1).map((v) => html`<g class="tick"><line x1=${M.l} x2=${W - M.r} y1=${sy(v)} y2=${sy(v)} /><text x=${M.l - 6} y=${sy(v) + 4} text-anchor="end">${yFormat(v)}</text></g>`)}
          ${ticks(x0, x1, xTicks)
            .filter((v, i, all) => (Number.isInteger(v) || xLabel !== 'round') && (i === 0 || xFormat(v) !== xFormat(all[i - 1])))
            .map((v) => html`<g class="tick"><text x=${sx(v)} y=${H - M.b + 16} text-anchor="middle">${xFormat(v)}</text></g>`)}
          <line class="axis" x1=${M.l} x2=${W - M.r} y1=${M.t + ph} y2=${M.t + ph} />
          <line class="axis" x1=${M.l} x2=${M.l} y1=${M.t} y2=${M.t + ph} />
          <text class="label" x=${M.l + pw / 2} y=${H - 4} text-anchor="middle">${xLabel}</text>
          ${yLabel && html`<text class="label ylabel" x=${12} y=${M.t + ph / 2} text-anchor="middle" transform=${`rotate(-90 12 ${M.t + ph / 2})`}>${yLabel}</text>`}
          ${clean.map(
            (s, i) => html`<g class=${`series s${i}`}>
              <polyline points=${s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')} />
              ${(s.points.length <= 150 ? s.points : s.points.slice(-1)).map(
                (p) => html`<circle cx=${sx(p.x).toFixed(1)} cy=${sy(p.y).toFixed(1)} r="3"><title>${`${s.name}, ${xLabel} ${xFormat(p.x)}: ${yFormat(p.y)}`}</title></circle>`,
              )}
            </g>`,
          )}
        </svg>`}
    <ul class="legend">
      ${clean.map((s, i) => html`<li><span class=${`swatch s${i}`} aria-hidden="true"></span>${s.name}${s.points.length ? html`: <strong>${yFormat(s.points[s.points.length - 1].y)}</strong>` : ' (no data)'}</li>`)}
    </ul>
    ${total > 0 &&
    html`<details class="numbers">
      <summary>Numbers (${xs.length} ${xLabel === 'round' ? 'rounds' : 'points'})</summary>
      <div class="scroll"><table>
        <thead><tr><th scope="col">${xLabel}</th>${clean.map((s) => html`<th scope="col">${s.name}</th>`)}</tr></thead>
        <tbody>${xs
          .slice()
          .reverse()
          .map((x) => html`<tr><th scope="row">${xFormat(x)}</th>${clean.map((s) => {
            const p = s.points.find((q) => q.x === x);
            return html`<td>${p ? yFormat(p.y) : '–'}</td>`;
          })}</tr>`)}</tbody>
      </table></div>
    </details>`}
  </figure>`;
}

/** A horizontal bar with its value as text beside it (a meter element: no inline style needed). */
export function Bar({ value, max = 1, label }) {
  return html`<span class="bar"><meter min="0" max=${max} value=${value} aria-hidden="true"></meter> <span class="value">${label}</span></span>`;
}
