/**
 * Benchmark: examples/s trained through the simulator (real SDK clients on socket.io in worker
 * threads, in-process coordinator) against bare `model.fit` of the same model (the 2NN MLP) on
 * the same tfjs backend, same data shape (600-row device datasets, E=1, B=10), in the same run.
 *
 *   npx tsx bench/simulation.ts [--clients 100] [--per-round 10] [--rounds 10] [--workers 1] [--baseline-fits 20]
 *
 * Printed figures:
 *  - baseline examples/s: model.fit on one thread;
 *  - simulator examples/s, end to end: examples aggregated / wall time of the rounds (includes
 *    selection, weight downloads, delta encoding, socket transfer, aggregation, commit);
 *  - simulator examples/s inside the SDK trainer (examples / summed trainMs), per worker;
 *  - overhead ratio = baseline / (end-to-end examples/s per worker thread).
 * No central or federated evaluation runs here (it is not training).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { resolveBackend } from '@flotilla/client';
import { buildPreset } from '@flotilla/model';
import { parseCliOptions } from '../simulator/src/cli-options.js';
import { loadMnist, MNIST_CLASSES, MNIST_INPUT_SIZE } from '../simulator/src/mnist.js';
import { iid } from '../simulator/src/partition.js';
import { runSimulation } from '../simulator/src/simulation.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    'per-round': { type: 'string', default: '10' },
    rounds: { type: 'string', default: '10' },
    workers: { type: 'string', default: '1' },
    'baseline-fits': { type: 'string', default: '20' },
  },
});
const clients = Number(values.clients);
const perRound = Number(values['per-round']);
const rounds = Number(values.rounds);
const workers = Number(values.workers);
const baselineFits = Number(values['baseline-fits']);
const EPC = 600;
const B = 10;
const LR = 0.1;

const backend = await resolveBackend();
const mnist = loadMnist();
const parts = iid(mnist.train.y, { clients, seed: 1, examplesPerClient: EPC });

// ---- baseline: bare model.fit, one device dataset at a time, like a device would ----
async function baseline(): Promise<{ examplesPerSec: number; examples: number; ms: number }> {
  const { model } = buildPreset('mnist-mlp');
  let examples = 0;
  let ms = 0;
  for (let f = 0; f < baselineFits + 2; f++) {
    const idx = parts[f % parts.length];
    const x = new Float32Array(idx.length * MNIST_INPUT_SIZE);
    const y = new Int32Array(idx.length);
    idx.forEach((r, i) => {
      x.set(mnist.train.x.subarray(r * MNIST_INPUT_SIZE, (r + 1) * MNIST_INPUT_SIZE), i * MNIST_INPUT_SIZE);
      y[i] = mnist.train.y[r];
    });
    const t0 = performance.now();
    const xs = tf.tensor2d(x, [idx.length, MNIST_INPUT_SIZE]);
    const labels = tf.tensor1d(y, 'int32');
    const ys = tf.oneHot(labels, MNIST_CLASSES).toFloat();
    const opt = tf.train.sgd(LR);
    model.compile({ optimizer: opt, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    await model.fit(xs, ys, { epochs: 1, batchSize: B, shuffle: true, verbose: 0 });
    tf.dispose([xs, labels, ys]);
    opt.dispose();
    // The first two fits warm up kernels and are not counted.
    if (f >= 2) {
      ms += performance.now() - t0;
      examples += idx.length;
    }
  }
  model.dispose();
  return { examplesPerSec: (examples / ms) * 1000, examples, ms };
}

console.log(`bench/simulation: tfjs backend ${backend}; 2NN MLP, ${EPC} rows per device, E=1, B=${B}, lr=${LR}`);
// The baseline runs before and after the simulation; on a shared machine the two bracket the noise.
const before = await baseline();
console.log(`  baseline model.fit (before):   ${before.examplesPerSec.toFixed(0).padStart(7)} examples/s  (${before.examples} examples in ${(before.ms / 1000).toFixed(2)} s, 1 thread)`);

const opts = parseCliOptions([
  '--clients', String(clients), '--clients-per-round', String(perRound), '--rounds', String(rounds),
  '--examples-per-client', String(EPC), '--batch-size', String(B), '--lr', String(LR), '--workers', String(workers),
  '--eval-clients', '0', '--quiet',
]);
if (opts === 'help') throw new Error('unreachable');
const sim = await runSimulation(opts, { noFiles: true, centralEvaluation: false, plan: { overSelect: 1 } });
const after = await baseline();
console.log(`  baseline model.fit (after):    ${after.examplesPerSec.toFixed(0).padStart(7)} examples/s`);
const base = { examplesPerSec: (before.examplesPerSec + after.examplesPerSec) / 2 };
// Rounds after the first (which includes model loading in every worker) are the steady state.
const steady = sim.results.rounds.slice(1);
const steadyMs = steady.reduce((s, r) => s + r.durationMs, 0);
const steadyExamples = steady.reduce((s, r) => s + r.participants * EPC, 0);
const e2e = (steadyExamples / steadyMs) * 1000;
const inTrainer = (sim.pool.examples / sim.pool.trainMs) * 1000;
const perWorker = e2e / sim.workers;
console.log(`  simulator, end to end:         ${e2e.toFixed(0).padStart(7)} examples/s  (${steadyExamples} examples in ${(steadyMs / 1000).toFixed(2)} s of rounds 2..${rounds}, ${sim.workers} worker thread(s), ${clients} devices on socket.io)`);
console.log(`  simulator, inside the trainer: ${inTrainer.toFixed(0).padStart(7)} examples/s per worker (summed SDK trainMs)`);
console.log(`  overhead ratio (mean baseline / simulator per worker): ${(base.examplesPerSec / perWorker).toFixed(2)}x end to end, ${(base.examplesPerSec / inTrainer).toFixed(2)}x inside the trainer`);
console.log(`  (baseline spread before/after: ${((Math.abs(before.examplesPerSec - after.examplesPerSec) / base.examplesPerSec) * 100).toFixed(0)}%, the noise floor of this comparison)`);
process.exit(0);
