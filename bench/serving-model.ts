/**
 * Where the per-row model cost of serving goes: which tfjs backend and which wasm binary serve
 * in this process, and the CPU cost per call and per row of the MNIST MLP (784-200-200-10,
 * 199,210 parameters, 0.398 MFLOP per row) at batch 1 to 128, for
 *   old:        serving's forward pass before this change (model.predict, the output values
 *               returned from the tf.tidy scope);
 *   model.predict with the values read after the tidy scope (the two effects apart);
 *   new:        predictPacked (tfjs-predict.ts) as serving runs it now;
 *   model.execute, the graph executor without predict's checks, slice and concat;
 *   fused ops:  the three Dense layers' kernels alone (fused matMul + bias + activation, softmax)
 *               on an input tensor made once, nothing read back;
 *   tensor in + read back: making the input tensor and reading an output of the same size back;
 * against a hand estimate: the math of a row at the GFLOP/s the fused ops reach at 128 rows.
 * CPU time (process.cpuUsage) per call, medians of `reps` repeats, interleaved (each repeat times
 * every variant once, so neighbours share the machine's load); ratios paired per repeat.
 *
 *   node --import ./scripts/dev-loader.mjs bench/serving-model.ts [backend: wasm|cpu] [reps 9]
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { buildPreset, resolveBackend, tfjsSignature } from '@flotilla/model';
import { forwardKind, predictPacked } from '../server/src/serving/tfjs-predict.js';
import { tfjsIO } from '../server/src/serving/model-io.js';
import { median as med } from './stats.js';

// Which .wasm file the backend reads (Emscripten reads it with fs.readFileSync in Node).
const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
const loaded: string[] = [];
const read = fs.readFileSync;
fs.readFileSync = ((p: unknown, ...rest: unknown[]) => {
  if (typeof p === 'string' && p.endsWith('.wasm')) loaded.push(p.split('/').pop()!);
  return (read as (...a: unknown[]) => unknown)(p, ...rest);
}) as typeof fs.readFileSync;

const backend = await resolveBackend('node', undefined, process.argv[2]);
const reps = Number(process.argv[3] ?? 9);
const simd = backend === 'wasm' ? await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') : '-';
const threads = backend === 'wasm' ? await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') : '-';
console.log(`backend ${backend}; wasm binary read: ${loaded.join(', ') || '(none)'}; WASM_HAS_SIMD_SUPPORT ${simd}; WASM_HAS_MULTITHREAD_SUPPORT ${threads}; node ${process.version}`);

const { model } = buildPreset('mnist-mlp');
const io = tfjsIO(tfjsSignature(model));
const params = model.countParams();
const flopsPerRow = 2 * (784 * 200 + 200 * 200 + 200 * 10);
const [w1, b1, w2, b2, w3, b3] = model.getWeights();

const outNames = model.outputs.map((o) => o.name);

const rowsList = [1, 8, 16, 32, 64, 128];
console.log(`forward pass predictPacked uses for this model: ${forwardKind(model, io)}`);
console.log('| rows | old: model.predict, values returned from tidy µs/call (µs/row) | model.predict, values read after tidy | new: predictPacked | model.execute | fused ops only (input tensor made once, no read-back) | tensor in + read back only | new / old (paired) | old minus new µs/call (paired) | fused ops µs/row / hand estimate |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
const fusedAt: Record<number, number> = {};
const lines: string[] = [];
for (const rows of rowsList) {
  const x = new Float32Array(rows * 784).map((_, i) => (i % 255) / 255);
  const xt = tf.tensor2d(x, [rows, 784]);
  /** Runs `f` (tensors in, tensors out) in a tidy scope and reads the outputs after it. */
  const outside = (f: () => tf.Tensor[]) => {
    const outs = tf.tidy(f);
    outs.forEach((o) => o.dataSync());
    tf.dispose(outs);
  };
  const variants: Record<string, () => void> = {
    // What serving ran before this change (tfjs-predict.ts at commit 0d6fbed): model.predict,
    // and the values returned from the tidy scope (which walks them).
    old: () => void tf.tidy(() => (model.predict(tf.tensor(x, [rows, 784], 'float32'), { batchSize: rows }) as tf.Tensor).dataSync()),
    oldOutside: () => outside(() => [model.predict(tf.tensor(x, [rows, 784], 'float32'), { batchSize: rows }) as tf.Tensor]),
    now: () => void predictPacked(model, io, x, rows),
    execute: () => outside(() => model.execute(tf.tensor(x, [rows, 784], 'float32'), outNames) as tf.Tensor[]),
    fused: () =>
      tf.tidy(() => {
        const h1 = tf.fused.matMul({ a: xt, b: w1, bias: b1, activation: 'relu' });
        const h2 = tf.fused.matMul({ a: h1, b: w2, bias: b2, activation: 'relu' });
        tf.softmax(tf.fused.matMul({ a: h2, b: w3, bias: b3 }));
      }),
    io: () => outside(() => [tf.clone(tf.tensor(x, [rows, 784], 'float32'))]),
  };
  const iters = Math.max(10, Math.round(600 / rows));
  for (const f of Object.values(variants)) for (let i = 0; i < 10; i++) f();
  const res: Record<string, number[]> = {};
  // Interleaved: each repeat times every variant once, so neighbours share the machine's load.
  for (let r = 0; r < reps; r++)
    for (const [k, f] of Object.entries(variants)) {
      const s = process.cpuUsage();
      for (let i = 0; i < iters; i++) f();
      const c = process.cpuUsage(s);
      (res[k] ??= []).push((c.user + c.system) / iters);
    }
  xt.dispose();
  const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, med(v)]));
  fusedAt[rows] = m.fused;
  const cell = (v: number) => `${v.toFixed(0)} (${(v / rows).toFixed(1)})`;
  lines.push(`| ${rows} | ${cell(m.old)} | ${cell(m.oldOutside)} | ${cell(m.now)} | ${cell(m.execute)} | ${cell(m.fused)} | ${m.io.toFixed(0)} | ${med(res.now.map((v, i) => v / res.old[i])).toFixed(2)} | ${med(res.old.map((v, i) => v - res.now[i])).toFixed(0)} | @${rows} |`);
}
// Hand estimate: the math of a row at the GFLOP/s the fused ops reach on the largest batch.
const top = rowsList[rowsList.length - 1];
const gflops = (flopsPerRow * top) / fusedAt[top] / 1000;
for (const l of lines) {
  const rows = Number(l.split('@')[1].split(' ')[0]);
  console.log(l.replace(`@${rows}`, ((fusedAt[rows] / rows) / (flopsPerRow / gflops / 1000)).toFixed(2)));
}
console.log(`mnist-mlp: ${params} parameters, ${(flopsPerRow / 1e6).toFixed(3)} MFLOP per row; the fused ops reach ${gflops.toFixed(1)} GFLOP/s at ${top} rows (${(flopsPerRow / gflops / 1000).toFixed(1)} µs per row: the hand estimate)`);
