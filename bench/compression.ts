/**
 * Compression benchmark (issue 6): for one delta of P floats (default 1M, Gaussian, std 1e-3),
 * every codec's encoded size, encode and decode throughput (MB/s of float32 input), error
 * (max |x_hat - x| and relative L2), and the ratios of size and throughput to f32 measured in the
 * same run. topk is also timed through ErrorFeedback, which adds a decode and two passes.
 *
 *   npx tsx bench/compression.ts [--p 1000000] [--runs 5]
 */
import { parseArgs } from 'node:util';
import { ErrorFeedback, getCodec, type CodecOptions } from '@flotilla/protocol';
import { median } from './stats.js';

const { values } = parseArgs({ options: { p: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '5' } } });
const P = Number(values.p);
const RUNS = Number(values.runs);

let seed = 12345;
const uniform = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return (seed + 0.5) / 4294967296;
};
const delta = Float32Array.from({ length: P }, () => 1e-3 * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
const inputMB = (P * 4) / 1e6;


interface Case {
  label: string;
  name: string;
  options: CodecOptions;
  feedback?: boolean;
}
interface Row {
  label: string;
  bytes: number;
  encMs: number;
  decMs: number;
  maxErr: number;
  relL2: number;
}

const cases: Case[] = [
  { label: 'f32', name: 'f32', options: {} },
  { label: 'f16', name: 'f16', options: {} },
  { label: 'int8 (block 256)', name: 'int8', options: {} },
  { label: 'int8 stochastic', name: 'int8', options: { random: Math.random } },
  { label: 'topk 10%', name: 'topk', options: { fraction: 0.1 } },
  { label: 'topk 1%', name: 'topk', options: { fraction: 0.01 } },
  { label: 'topk 1% + feedback', name: 'topk', options: { fraction: 0.01 }, feedback: true },
];

/** One timed encode and decode of every case per run, interleaved, so all codecs see the same machine load. */
const enc: number[][] = cases.map(() => []);
const dec: number[][] = cases.map(() => []);
const feedback = cases.map(() => new ErrorFeedback(P));
for (let r = 0; r <= RUNS; r++) {
  cases.forEach((c, k) => {
    const codec = getCodec(c.name);
    let t0 = performance.now();
    const bytes = c.feedback ? feedback[k].encode(codec, delta, c.options) : codec.encode(delta, c.options);
    const e = performance.now() - t0;
    t0 = performance.now();
    codec.decode(bytes, P);
    const d = performance.now() - t0;
    if (r > 0) {
      // run 0 warms up
      enc[k].push(e);
      dec[k].push(d);
    }
  });
}

const rows: Row[] = cases.map((c, k) => {
  const codec = getCodec(c.name);
  const y = codec.decode(codec.encode(delta, c.options), P); // error of a single round, with or without feedback
  let maxErr = 0;
  let e2 = 0;
  let x2 = 0;
  for (let i = 0; i < P; i++) {
    const e = y[i] - delta[i];
    maxErr = Math.max(maxErr, Math.abs(e));
    e2 += e * e;
    x2 += delta[i] * delta[i];
  }
  return { label: c.label, bytes: codec.encode(delta, c.options).byteLength, encMs: median(enc[k]), decMs: median(dec[k]), maxErr, relL2: Math.sqrt(e2 / x2) };
});

const base = rows[0];
console.log(`compression: P=${P} floats (${inputMB.toFixed(1)} MB float32), median of ${RUNS} runs, node ${process.version}`);
console.log('codec                 bytes      size/f32  enc MB/s  dec MB/s  enc/f32  dec/f32  max|err|   rel L2');
for (const r of rows) {
  const enc = inputMB / (r.encMs / 1000);
  const dec = inputMB / (r.decMs / 1000);
  console.log(
    [
      r.label.padEnd(20),
      String(r.bytes).padStart(9),
      (r.bytes / base.bytes).toFixed(4).padStart(10),
      enc.toFixed(0).padStart(9),
      dec.toFixed(0).padStart(9),
      (base.encMs / r.encMs).toFixed(3).padStart(8),
      (base.decMs / r.decMs).toFixed(3).padStart(8),
      r.maxErr.toExponential(2).padStart(10),
      r.relL2.toExponential(2).padStart(9),
    ].join(' '),
  );
}
