import { niceTicks } from '../svg-chart.js';

/**
 * A dot-and-range chart, one row per configuration: the mean as a filled dot, the range over
 * seeds as a bar, each seed's own value as a small open circle. Standalone SVG, like svg-chart.ts.
 */
export interface SpreadRow {
  label: string;
  mean: number;
  min: number;
  max: number;
  values: number[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (n: number) => Number(n.toFixed(2)).toString();

export function renderSpreadChart(o: { title: string; subtitle?: string; xLabel: string; percent: boolean; rows: SpreadRow[] }): string {
  const rowH = 26;
  const left = 420;
  const W = 1000;
  const top = o.subtitle ? 74 : 56;
  const ph = Math.max(1, o.rows.length) * rowH;
  const H = top + ph + 64;
  const pw = W - left - 40;
  const all = o.rows.flatMap((r) => [r.min, r.max, ...r.values]);
  const lo0 = all.length ? Math.min(...all) : 0;
  const hi0 = all.length ? Math.max(...all) : 1;
  const pad = (hi0 - lo0) * 0.08 || Math.abs(hi0) * 0.1 || 1;
  const ticks = niceTicks(o.percent ? Math.max(0, lo0 - pad) : Math.max(0, lo0 - pad), hi0 + pad, 8);
  const lo = Math.min(ticks[0], lo0);
  const hi = Math.max(ticks[ticks.length - 1], hi0);
  const sx = (v: number) => left + ((v - lo) / (hi - lo || 1)) * pw;
  const label = (v: number) => (o.percent ? `${Number((v * 100).toFixed(1))}%` : String(v));
  const p: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="20" font-weight="bold" fill="#222">${esc(o.title)}</text>`,
  ];
  if (o.subtitle) p.push(`<text x="${W / 2}" y="52" text-anchor="middle" font-size="14" fill="#555">${esc(o.subtitle)}</text>`);
  for (const t of ticks) {
    const x = f(sx(t));
    p.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="#eeeeee"/>`, `<text x="${x}" y="${top + ph + 20}" text-anchor="middle" font-size="13" fill="#333">${label(t)}</text>`);
  }
  p.push(
    `<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#333" stroke-width="1.5"/>`,
    `<text x="${left + pw / 2}" y="${H - 14}" text-anchor="middle" font-size="15" fill="#222">${esc(o.xLabel)}</text>`,
  );
  o.rows.forEach((r, i) => {
    const y = top + i * rowH + rowH / 2;
    p.push(
      `<text x="${left - 10}" y="${f(y)}" text-anchor="end" dominant-baseline="middle" font-size="13" fill="#222">${esc(r.label.length > 60 ? r.label.slice(0, 57) + '...' : r.label)}</text>`,
      `<line x1="${f(sx(r.min))}" y1="${f(y)}" x2="${f(sx(r.max))}" y2="${f(y)}" stroke="#1f77b4" stroke-width="4" stroke-opacity="0.35"/>`,
      ...r.values.map((v) => `<circle cx="${f(sx(v))}" cy="${f(y)}" r="4" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`),
      `<circle cx="${f(sx(r.mean))}" cy="${f(y)}" r="5.5" fill="#d62728"/>`,
    );
  });
  p.push('</svg>');
  return p.join('\n') + '\n';
}
