import { html } from '../vendor/htm-preact.mjs';
import { clock, duration } from './format.js';

const W = 640;
const L = 70;
const R = 14;
const ROW = 18;

/**
 * The round timeline: one row per round from selection (its start) to commit or failure, with
 * the deadline marked, on a common scale of seconds since each round's start; the table under
 * the disclosure holds the same times. `now` closes the bar of the round in flight.
 */
export function Timeline({ rounds, now }) {
  if (rounds.length === 0) return html`<p class="empty">No rounds yet.</p>`;
  const span = Math.max(...rounds.map((r) => Math.max((r.endedAt ?? now) - r.startedAt, (r.deadline ?? r.startedAt) - r.startedAt, 1)));
  // Deadlines can be far beyond the actual rounds: scale to the longest bar, and clip deadline marks.
  const longest = Math.max(...rounds.map((r) => (r.endedAt ?? now) - r.startedAt), 1);
  const scale = Math.min(span, longest * 1.5);
  const H = rounds.length * ROW + 30;
  const sx = (t) => L + Math.min(1, t / scale) * (W - L - R);
  return html`<figure class="chart timeline" aria-label="Round timeline">
    <figcaption>Round timeline (seconds since selection; | = deadline)</figcaption>
    <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`Round timeline of ${rounds.length} rounds; longest ${duration(longest)}`}>
      ${rounds.map((r, i) => {
        const y = 4 + i * ROW;
        const end = (r.endedAt ?? now) - r.startedAt;
        const dl = r.deadline ? r.deadline - r.startedAt : null;
        return html`<g class=${`tl ${r.state}`}>
          <text x=${L - 6} y=${y + 11} text-anchor="end">#${r.round}</text>
          <rect x=${L} y=${y} width=${Math.max(2, sx(end) - L)} height=${ROW - 6}><title>${`round ${r.round} ${r.state}: ${duration(end)}`}</title></rect>
          ${dl !== null && dl <= scale && html`<line class="deadline" x1=${sx(dl)} x2=${sx(dl)} y1=${y - 2} y2=${y + ROW - 4} />`}
        </g>`;
      })}
      <text class="label" x=${L} y=${H - 6}>0 s</text>
      <text class="label" x=${W - R} y=${H - 6} text-anchor="end">${duration(scale)}</text>
    </svg>
    <details class="numbers"><summary>Numbers (${rounds.length} rounds)</summary><div class="scroll"><table>
      <thead><tr><th scope="col">Round</th><th scope="col">State</th><th scope="col">Selected at</th><th scope="col">Deadline</th><th scope="col">Ended</th><th scope="col">Duration</th><th scope="col">Aggregation</th></tr></thead>
      <tbody>${rounds.map((r) => html`<tr><th scope="row">${r.round}</th><td>${r.state}</td><td>${clock(r.startedAt)}</td><td>${clock(r.deadline)}</td><td>${clock(r.endedAt)}</td><td>${duration(r.durationMs ?? (r.endedAt ?? now) - r.startedAt)}</td><td>${r.aggregationMs !== undefined && r.aggregationMs !== null ? duration(r.aggregationMs) : '–'}</td></tr>`)}</tbody>
    </table></div></details>
  </figure>`;
}
