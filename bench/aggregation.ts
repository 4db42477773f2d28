/**
 * Aggregation kernel benchmark (issues 2 and 14 part 9): fold f32-encoded deltas of P floats into
 * the streaming weighted mean through the coordinator's report path, and compare with a
 * Float32Array copy of the same number of bytes measured in the same run. Every report is a
 * distinct buffer from a pool larger than the caches (as reports arriving from the network are),
 * and the copy baseline copies between pool buffers too, so both run from memory.
 *
 * Paths measured (GB/s of encoded delta bytes consumed by the folds; medians of interleaved runs;
 * the per-round fixed cost, making the accumulator and taking the mean, is timed apart and shown
 * both alone and counted in):
 *  - before: decode with a copy (f32Codec.decode), finite check, range check against the global
 *    weights, scalar fold `s[i] += w * x[i]`: the report path before issue 14 part 9 (kept here
 *    as the reference);
 *  - after:  f32View (the frame read in place), then WeightedMean.addWithin at its default depth
 *    (4): the delta copied into a staging slot of the kernel's memory block by block, each block
 *    checked against the headroom while it is in the L1 cache, and every 4 staged deltas folded
 *    in one WebAssembly SIMD pass over the float64 sum (server/src/fl/fold-kernel.ts): what
 *    ActiveRound.accept runs now for FedAvg. The final flush of the last staged deltas is timed
 *    with the folds;
 *  - fold:   WeightedMean.add alone (the kernel without the check), default depth;
 *  - after dK (one column per --depths entry): the `after` path with K deltas per pass over the
 *    sum; d1 is the kernel before staging (check pass, then the fold of that one delta).
 * Peak RSS as N grows checks memory stays O(model).
 *
 * Writes a chart of the x-copy ratios against N to bench/results/aggregation.svg (its subtitle
 * gives the load average at start and end: figures from a busy machine say so).
 *
 *   npx tsx bench/aggregation.ts [--p 1000000] [--n 10,100,1000] [--pool-mib 256] [--depths 1,8]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { f32Codec, f32View } from '@flotilla/protocol';
import { WeightedMean } from '../server/src/fl/weighted-mean.js';
import { allFinite, firstOutOfRange, rangeHeadroom } from '../server/src/fl/update-checks.js';
import { boundBits, defaultDepth } from '../server/src/fl/fold-kernel.js';
import { renderAccuracyChart, type ChartSeries } from '../simulator/src/svg-chart.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { p: { type: 'string', default: '1000000' }, n: { type: 'string', default: '10,100,1000' }, 'pool-mib': { type: 'string', default: '256' }, depths: { type: 'string', default: '1,8' } } });
const P = Number(values.p);
const Ns = values.n!.split(',').map(Number);
const depths = values.depths ? values.depths.split(',').map(Number) : [];
const bytes = 12 + 4 * P;
const POOL = Math.max(4, Math.ceil((Number(values['pool-mib']) * 2 ** 20) / bytes));
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

const pool = Array.from({ length: POOL }, (_, k) => f32Codec.encode(Float32Array.from({ length: P }, (_, i) => Math.sin(i + k) * 1e-3)));
const copyDst = Array.from({ length: POOL }, () => new Float32Array(P));
const base = Float32Array.from({ length: P }, (_, i) => Math.cos(i) * 0.1);
const bound = boundBits(rangeHeadroom(base));

/** GB/s of f32 payload bytes copied from one pool buffer to another. */
function copyBaseline(n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) copyDst[(i + 1) % POOL].set(new Float32Array(pool[i % POOL].buffer, 12, P));
  return (n * P * 4) / ((performance.now() - t0) / 1000) / 1e9;
}

type Path = 'before' | 'after' | 'fold' | `d${number}`;
/** The fold before part 9, for the `before` path. */
function scalarFold(s: Float64Array, x: Float32Array, w: number): void {
  for (let i = 0; i < s.length; i++) s[i] += w * x[i];
}

/**
 * Fold n reports on one path. `gbps` times the folds alone (what the kernel does per report);
 * `fixedMs` is the per-round cost outside them, timed apart: making the accumulator (its memory is
 * touched once there) and the final mean. `allGbps` counts both, as one round of n reports pays.
 */
function aggregate(path: Path, n: number): { gbps: number; allGbps: number; fixedMs: number; peakRss: number } {
  const s0 = performance.now();
  const mean = path === 'before' ? null : new WeightedMean(P, path.startsWith('d') ? Number(path.slice(1)) : defaultDepth(P));
  const oldSum = path === 'before' ? new Float64Array(P).fill(0) : null;
  const setupMs = performance.now() - s0;
  let peak = process.memoryUsage().rss;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const frame = pool[i % POOL];
    const w = 1 + (i % 7);
    if (path === 'before') {
      const d = f32Codec.decode(frame, P);
      if (!allFinite(d) || firstOutOfRange(base, d) >= 0) throw new Error('unexpected');
      scalarFold(oldSum!, d, w);
    } else if (path === 'fold') mean!.add(f32View(frame, P), w);
    else if (!mean!.addWithin(f32View(frame, P), w, bound)) throw new Error('unexpected');
    if (i % 10 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  mean?.flush(); // the last staged deltas: part of folding n reports
  const foldS = (performance.now() - t0) / 1000;
  const m0 = performance.now();
  if (mean) mean.mean();
  else scalarMean(oldSum!, n);
  const fixedMs = setupMs + performance.now() - m0;
  return { gbps: (n * bytes) / foldS / 1e9, allGbps: (n * bytes) / (foldS + fixedMs / 1000) / 1e9, fixedMs, peakRss: Math.max(peak, process.memoryUsage().rss) };
}

/** The mean of the `before` path (float64 sum to float32). */
function scalarMean(s: Float64Array, total: number): Float32Array {
  const out = new Float32Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s[i] / total;
  return out;
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const loadAtStart = load();
console.log(`aggregation: P=${P} floats (${mib(bytes)} MiB per encoded delta), pool of ${POOL} distinct reports (${mib(POOL * bytes)} MiB), node ${process.version}, load average ${loadAtStart}`);
console.log(`kernel: GB/s of the folds alone (after and fold: ${defaultDepth(P)} deltas per pass over the sum; dK: K per pass); fixed: per-round ms outside them (accumulator set-up + mean); incl.: GB/s counting the fixed cost`);
const extra = depths.map((d) => `d${d}` as Path);
console.log(`N      copy GB/s  before GB/s (x copy)  after GB/s (x copy)  fold GB/s (x copy)  after/before  after fixed ms  after incl. (x copy)  before fixed ms  peak RSS MiB${extra.map((p) => `  after ${p} (x copy)`.padStart(20)).join('')}`);
const rows: Array<{ n: number; rss: number; ratios: Record<string, number> }> = [];
for (const n of Ns) {
  const runs = n >= 1000 ? 3 : 5;
  const r: Record<Path | 'copy' | 'afterAll' | 'afterFixed' | 'beforeFixed', number[]> = { copy: [], before: [], after: [], fold: [], afterAll: [], afterFixed: [], beforeFixed: [] };
  for (const p of extra) r[p] = [];
  let rss = 0;
  for (const p of ['after', 'fold', 'before', ...extra] as Path[]) aggregate(p, Math.min(n, 20)); // warm the JIT on every path before timing
  for (let k = 0; k < runs; k++) {
    r.copy.push(copyBaseline(Math.max(n, 50)));
    for (const p of ['before', 'after', 'fold', ...extra] as Path[]) {
      const a = aggregate(p, n);
      r[p].push(a.gbps);
      if (p === 'after') r.afterAll.push(a.allGbps), r.afterFixed.push(a.fixedMs);
      if (p === 'before') r.beforeFixed.push(a.fixedMs);
      rss = Math.max(rss, a.peakRss);
    }
  }
  const c = median(r.copy);
  const cell = (xs: number[]) => `${median(xs).toFixed(2)} (${(median(xs) / c).toFixed(3)})`;
  rows.push({ n, rss, ratios: Object.fromEntries((['before', 'after', 'fold', ...extra] as Path[]).map((p) => [p, median(r[p]) / c])) });
  console.log(
    `${String(n).padEnd(6)} ${c.toFixed(2).padStart(9)}  ${cell(r.before).padStart(20)}  ${cell(r.after).padStart(19)}  ${cell(r.fold).padStart(18)}  ${(median(r.after) / median(r.before)).toFixed(2).padStart(12)}  ${median(r.afterFixed).toFixed(1).padStart(14)}  ${cell(r.afterAll).padStart(20)}  ${median(r.beforeFixed).toFixed(1).padStart(15)}  ${mib(rss).padStart(12)}${extra.map((p) => cell(r[p]).padStart(20)).join('')}`,
  );
}
const first = rows[0];
const last = rows[rows.length - 1];
console.log(`peak RSS at N=${last.n} / N=${first.n}: ${(last.rss / first.rss).toFixed(2)}x (pool ${mib(POOL * bytes)} MiB, model ${mib(P * 4)} MiB float32, running sum ${mib(P * 8)} MiB float64, ${defaultDepth(P)} staging slots ${mib(defaultDepth(P) * P * 4)} MiB float32)`);
console.log(`load average at the end: ${load()}`);
const names: Record<string, string> = { before: 'before part 9', after: `after (d${defaultDepth(P)})`, fold: `fold, no check (d${defaultDepth(P)})` };
const series: ChartSeries[] = (['after', ...extra, 'fold', 'before'] as Path[]).map((p) => ({
  name: names[p] ?? `after ${p}`,
  points: rows.map((row) => ({ x: row.n, y: Math.min(1, row.ratios[p]) })),
}));
await mkdir(join(import.meta.dirname, 'results'), { recursive: true });
await writeFile(
  join(import.meta.dirname, 'results', 'aggregation.svg'),
  renderAccuracyChart({
    title: `Aggregation kernel against a same-run Float32Array copy (${mib(P * 4)} MiB reports)`,
    subtitle: `dK: K reports per pass over the sum; medians; ${mib(POOL * bytes)} MiB pool; load average ${loadAtStart} at start, ${load()} at end`,
    xLabel: 'reports per round (N)',
    xScale: 'log10',
    xUnit: '',
    yLabel: 'share of the copy\'s GB/s',
    yMin: 0,
    target: 0.3,
    series,
  }),
);
