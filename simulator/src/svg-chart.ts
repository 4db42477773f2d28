/**
 * A small, dependency-free SVG line chart for "test accuracy against round": axes with ticks and
 * grid, axis labels, a title, one or more series with a legend, and an optional dashed, labelled
 * target line. Output is a standalone SVG document (opens in any browser, renders with rsvg).
 */
export interface ChartPoint {
  x: number;
  y: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
}

export interface AccuracyChartOptions {
  title: string;
  series: ChartSeries[];
  /** Accuracy the run aims for, in [0, 1]; drawn dashed and labelled. */
  target?: number;
  /** x values of failed attempts (rounds that committed nothing), marked on the x axis. */
  failedX?: number[];
  subtitle?: string;
  xLabel?: string;
  /** 'log10': logarithmic x axis (points with x <= 0 are left out), for quantities spanning decades such as bytes. Default 'linear'. */
  xScale?: 'linear' | 'log10';
  /** Unit appended to the legend's last x value (default: "@ x", as for rounds). */
  xUnit?: string;
  yLabel?: string;
  /** Lower end of the y axis, in [0, 1) (default: just below the lowest point). Lines below it are clipped at the axis. */
  yMin?: number;
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
/** Estimated mean advance of a 13 px Helvetica/Arial character in mixed text (lower case about 6.5 px, digits 7.2, a space 3.6): sizes the legend. */
const LEGEND_CHAR_PX = 7.2;

/** Up to ~`count` round tick values covering [lo, hi] at a 1/2/5 x 10^k step. */
export function niceTicks(lo: number, hi: number, count = 8): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9) * step;
  for (let v = first; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

/** Ticks of a log axis over [lo, hi] (lo > 0): 1, 2 and 5 times each power of ten, thinned to about `count`. */
export function logTicks(lo: number, hi: number, count = 10): number[] {
  if (!(lo > 0) || !(hi >= lo)) return [];
  const out: number[] = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** k).toPrecision(6));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  if (out.length <= count) return out;
  return out.filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9); // decades only
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(n: number): string {
  return Number(n.toFixed(2)).toString();
}

/** A percentage with as many decimals as `step` (a tick step, in [0,1] units) needs, at most 2. */
function pct(v: number, step: number): string {
  const p = step * 100;
  const decimals = [0, 1, 2].find((d) => Math.abs(p * 10 ** d - Math.round(p * 10 ** d)) < 1e-6) ?? 2;
  return `${Number((v * 100).toFixed(decimals))}%`;
}

export function renderAccuracyChart(o: AccuracyChartOptions): string {
  const W = o.width ?? 880;
  const H = o.height ?? 520;
  const m = { top: o.subtitle ? 74 : 56, right: 32, bottom: 64, left: 78 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;

  const log = o.xScale === 'log10';
  const usable = (p: ChartPoint) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!log || p.x > 0);
  const pts = o.series.flatMap((s) => s.points).filter(usable);
  const xMax = log ? Math.max(...pts.map((p) => p.x), 1e-300) : Math.max(1, ...pts.map((p) => p.x));
  const xMin = log ? Math.min(...pts.map((p) => p.x), xMax) : pts.length ? Math.min(0, ...pts.map((p) => p.x)) : 0;
  // y: zoom onto the interesting band but always show 100% and the target.
  const ys = pts.map((p) => p.y);
  if (o.target !== undefined) ys.push(o.target);
  const yLowRaw = ys.length ? Math.min(...ys) : 0;
  const yMin = o.yMin ?? Math.max(0, Math.floor((yLowRaw - 0.02) * 10) / 10);
  const yMax = 1;

  // Log axis: widen to whole decades around the data so its ends carry ticks.
  const lxMin = log ? Math.floor(Math.log10(xMin)) : 0;
  const lxMax = log ? Math.max(Math.ceil(Math.log10(xMax)), lxMin + 1) : 0;
  const sx = log
    ? (x: number) => m.left + ((Math.log10(x) - lxMin) / (lxMax - lxMin)) * pw
    : (x: number) => m.left + ((x - xMin) / (xMax - xMin)) * pw;
  const sy = (y: number) => m.top + (1 - (y - yMin) / (yMax - yMin)) * ph;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="20" font-weight="bold" fill="#222">${esc(o.title)}</text>`,
  );
  parts.push(`<defs><clipPath id="plot-area"><rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}"/></clipPath></defs>`);
  if (o.subtitle) parts.push(`<text x="${W / 2}" y="52" text-anchor="middle" font-size="14" fill="#555">${esc(o.subtitle)}</text>`);

  // Grid, ticks and tick labels.
  const yTicks = niceTicks(yMin, yMax, 8);
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 0.1;
  for (const t of yTicks) {
    const y = fmt(sy(t));
    parts.push(
      `<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e6e6e6"/>`,
      `<line x1="${m.left - 6}" y1="${y}" x2="${m.left}" y2="${y}" stroke="#333"/>`,
      `<text x="${m.left - 10}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="13" fill="#333">${pct(t, yStep)}</text>`,
    );
  }
  const xTicks = log ? logTicks(10 ** lxMin, 10 ** lxMax, 12) : niceTicks(xMin, xMax, 10).filter((t) => Number.isInteger(t));
  for (const t of xTicks) {
    const x = fmt(sx(t));
    parts.push(
      `<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#f0f0f0"/>`,
      `<line x1="${x}" y1="${m.top + ph}" x2="${x}" y2="${m.top + ph + 6}" stroke="#333"/>`,
      `<text x="${x}" y="${m.top + ph + 22}" text-anchor="middle" font-size="13" fill="#333">${t}</text>`,
    );
  }
  // Axes.
  parts.push(
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#333" stroke-width="1.5"/>`,
    `<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#333" stroke-width="1.5"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 16}" text-anchor="middle" font-size="15" fill="#222">${esc(o.xLabel ?? 'Round')}</text>`,
    `<text transform="translate(20 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="15" fill="#222">${esc(o.yLabel ?? 'Test accuracy')}</text>`,
  );

  // Target line.
  if (o.target !== undefined) {
    const y = fmt(sy(o.target));
    parts.push(
      `<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="8 5"/>`,
      `<text x="${m.left + 8}" y="${fmt(sy(o.target) - 7)}" text-anchor="start" font-size="13" fill="#d62728">target ${pct(o.target, 0.001)}</text>`,
    );
  }

  // Series.
  o.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const ps = s.points.filter(usable).sort((a, b) => a.x - b.x);
    if (ps.length === 0) return;
    const d = ps.map((p, j) => `${j === 0 ? 'M' : 'L'}${fmt(sx(p.x))} ${fmt(sy(p.y))}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" clip-path="url(#plot-area)"/>`);
    if (ps.length <= 60) {
      for (const p of ps.filter((q) => q.y >= yMin)) parts.push(`<circle cx="${fmt(sx(p.x))}" cy="${fmt(sy(p.y))}" r="3" fill="${color}"/>`);
    }
  });

  // Failed rounds: red crosses just above the x axis.
  const failed = (o.failedX ?? []).filter(Number.isFinite);
  for (const fx of failed) {
    const x = sx(fx);
    const y = m.top + ph - 8;
    parts.push(`<path d="M${fmt(x - 4)} ${fmt(y - 4)} L${fmt(x + 4)} ${fmt(y + 4)} M${fmt(x - 4)} ${fmt(y + 4)} L${fmt(x + 4)} ${fmt(y - 4)}" stroke="#d62728" stroke-width="1.5"/>`);
  }

  // Legend (bottom right, above the axis), with each series' last value. It starts far enough left
  // for its longest label to end inside the plot (13 px text: at most LEGEND_CHAR_PX per character),
  // but never left of the plot.
  const legend = o.series.filter((s) => s.points.some(usable));
  const labels = legend.map((s) => {
    const last = s.points.filter(usable).at(-1)!;
    return `${s.name} (last ${pct(last.y, 0.0001)} @ ${Number.isInteger(last.x) ? last.x : Number(last.x.toPrecision(4))}${o.xUnit ? ` ${o.xUnit}` : ''})`;
  });
  const widest = Math.max(0, ...labels.map((l) => l.length)) * LEGEND_CHAR_PX + 40;
  const lx = Math.max(m.left + 8, m.left + pw - Math.max(250, widest));
  legend.forEach((s, i) => {
    const color = COLORS[o.series.indexOf(s) % COLORS.length];
    const y = m.top + ph - 16 - (legend.length - 1 - i) * 20;
    parts.push(
      `<line x1="${fmt(lx)}" y1="${y}" x2="${fmt(lx + 24)}" y2="${y}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${fmt(lx + 32)}" y="${y}" dominant-baseline="middle" font-size="13" fill="#222">${esc(labels[i])}</text>`,
    );
  });
  if (failed.length > 0) {
    const y = m.top + ph - 16 - legend.length * 20;
    const [a, b] = [fmt(lx + 8), fmt(lx + 16)];
    parts.push(
      `<path d="M${a} ${y - 4} L${b} ${y + 4} M${a} ${y + 4} L${b} ${y - 4}" stroke="#d62728" stroke-width="1.5"/>`,
      `<text x="${fmt(lx + 32)}" y="${y}" dominant-baseline="middle" font-size="13" fill="#222">failed round (${failed.length})</text>`,
    );
  }

  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
