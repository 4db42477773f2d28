/**
 * Aggregation benchmark (issue 2): fold N f32-encoded deltas of P floats into the streaming
 * weighted mean through the coordinator's real path (decode, finite check, fold), report GB/s of
 * delta bytes consumed and the ratio to a plain Float32Array copy of the same bytes (the
 * memory-bandwidth floor), and peak RSS as N grows (it must not grow with N).
 *
 *   npx tsx bench/aggregation.ts [--p 1000000] [--n 10,100,1000]
 */
import { parseArgs } from 'node:util';
import { f32Codec } from '@flotilla/protocol';
import { WeightedMean } from '../server/src/fl/weighted-mean.js';
import { allFinite } from '../server/src/fl/update-checks.js';

const { values } = parseArgs({ options: { p: { type: 'string', default: '1000000' }, n: { type: 'string', default: '10,100,1000' } } });
const P = Number(values.p);
const Ns = values.n!.split(',').map(Number);

const delta = new Float32Array(P).map((_, i) => Math.sin(i) * 1e-3);
const encoded = f32Codec.encode(delta);
const bytes = encoded.byteLength;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

function copyBaseline(n: number): number {
  const src = new Float32Array(encoded.buffer, 12, P);
  const dst = new Float32Array(P);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    dst.set(src);
    src[i % P] += 0; // keep the loop observable
  }
  return (n * P * 4) / ((performance.now() - t0) / 1000) / 1e9;
}

function aggregate(n: number): { gbps: number; peakRss: number; msPerUpdate: number } {
  const mean = new WeightedMean(P);
  let peak = process.memoryUsage().rss;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const d = f32Codec.decode(encoded, P);
    if (!allFinite(d)) throw new Error('unexpected');
    mean.add(d, 1 + (i % 7));
    if (i % 10 === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  mean.mean();
  const s = (performance.now() - t0) / 1000;
  peak = Math.max(peak, process.memoryUsage().rss);
  return { gbps: (n * bytes) / s / 1e9, peakRss: peak, msPerUpdate: (s * 1000) / n };
}

console.log(`aggregation: P=${P} floats (${mib(bytes)} MiB per encoded delta), node ${process.version}`);
console.log('N      agg GB/s  copy GB/s  ratio(agg/copy)  ms/update  peak RSS MiB');
const rows: Array<{ n: number; ratio: number; rss: number }> = [];
for (const n of Ns) {
  const runs = n >= 1000 ? 1 : 3;
  const agg: ReturnType<typeof aggregate>[] = [];
  const copy: number[] = [];
  for (let r = 0; r < runs; r++) {
    agg.push(aggregate(n));
    copy.push(copyBaseline(Math.max(n, 50)));
  }
  const g = median(agg.map((a) => a.gbps));
  const c = median(copy);
  const rss = Math.max(...agg.map((a) => a.peakRss));
  rows.push({ n, ratio: g / c, rss });
  console.log(`${String(n).padEnd(6)} ${g.toFixed(2).padStart(8)}  ${c.toFixed(2).padStart(9)}  ${(g / c).toFixed(3).padStart(15)}  ${median(agg.map((a) => a.msPerUpdate)).toFixed(2).padStart(9)}  ${mib(rss).padStart(12)}`);
}
const first = rows[0];
const last = rows[rows.length - 1];
console.log(`peak RSS at N=${last.n} / N=${first.n}: ${(last.rss / first.rss).toFixed(2)}x (model is ${mib(P * 4)} MiB float32, running sum ${mib(P * 8)} MiB float64)`);
