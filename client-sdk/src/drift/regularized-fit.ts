import * as tf from '@tensorflow/tfjs';
import type { ClientPlan } from '@flotilla/protocol';
import { AppError, splitFlat, type WeightManifest } from '@flotilla/protocol';

/**
 * Local training with terms model.fit cannot add, as a manual batch loop: the plan's loss plus
 *   (mu / 2) ||w - anchor||^2      FedProx (Li et al. 2020) and FedDyn's proximal term
 *   + <linear, w>                  SCAFFOLD's c - c_i, FedDyn's -h_i (a constant gradient shift)
 * over the trainable weights. `anchor` is the full flat weight vector (manifest order), `linear` the
 * trainable vector (protocol/src/tensor/trainable.ts) or null. Batches come from `epochBatches`,
 * called once per epoch (shuffled tensors in memory, or one pass over a streamed dataset); the loop
 * disposes every batch it is given. Returns the per-epoch mean of the plan's loss (without the added
terms) and the optimizer steps taken
 * (K of SCAFFOLD's control variate update).
 */
export interface Regularizer {
  mu: number;
  linear: Float32Array | null;
}

export type EpochBatches = () => AsyncIterable<{ xs: tf.Tensor; ys: tf.Tensor }>;

/** Shuffled mini-batches of in-memory tensors, new order each epoch. */
export function shuffledBatches(xs: tf.Tensor, ys: tf.Tensor, batchSize: number): EpochBatches {
  const n = xs.shape[0];
  return async function* () {
    const order = tf.util.createShuffledIndices(n);
    for (let s = 0; s < n; s += batchSize) {
      const idx = tf.tensor1d(Array.from(order.subarray(s, Math.min(n, s + batchSize))), 'int32');
      const batch = { xs: tf.gather(xs, idx), ys: tf.gather(ys, idx) };
      idx.dispose();
      yield batch;
    }
  };
}

/** One pass over a batched tf.data dataset per epoch. */
export function datasetBatches(ds: tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>): EpochBatches {
  return async function* () {
    const it = await ds.iterator();
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  };
}

const LOSSES: Record<string, (y: tf.Tensor, p: tf.Tensor) => tf.Tensor> = {
  categoricalCrossentropy: tf.metrics.categoricalCrossentropy,
  binaryCrossentropy: tf.metrics.binaryCrossentropy,
  meanSquaredError: tf.metrics.meanSquaredError,
  meanAbsoluteError: tf.metrics.meanAbsoluteError,
};

export async function regularizedFit(
  model: tf.LayersModel,
  manifest: WeightManifest,
  anchor: Float32Array,
  epochBatches: EpochBatches,
  plan: ClientPlan,
  reg: Regularizer,
  opt: tf.Optimizer,
  shouldStop: () => boolean,
  yieldMs: number,
): Promise<{ history: tf.History; steps: number }> {
  // The compiled model's loss function (the plan's), applied per example.
  const lossFn = LOSSES[plan.loss] ?? (model as unknown as { lossFunctions?: Array<(y: tf.Tensor, p: tf.Tensor) => tf.Tensor> }).lossFunctions?.[0];
  if (!lossFn) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { loss: plan.loss, why: 'proximal and drift-corrected training support categorical and binary crossentropy, mean squared and mean absolute error' });
  const parts = splitFlat(anchor, manifest);
  const anchorOf = new Map<string, tf.Tensor>();
  const linearOf = new Map<string, tf.Tensor>();
  let o = 0;
  manifest.forEach((s, i) => {
    if (reg.mu > 0) anchorOf.set(s.name, tf.tensor(parts[i], s.shape, 'float32'));
    if (s.trainable === false) return;
    if (reg.linear) linearOf.set(s.name, tf.tensor(reg.linear.subarray(o, o + s.size), s.shape, 'float32'));
    o += s.size;
  });
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const losses: number[] = [];
  let steps = 0;
  let lastYield = Date.now();
  try {
    for (let e = 0; e < plan.epochs && !shouldStop(); e++) {
      let sum = 0;
      let batches = 0;
      for await (const { xs: bx, ys: by } of epochBatches()) {
        if (shouldStop()) {
          tf.dispose([bx, by]);
          break;
        }
        let dataLoss: tf.Scalar | null = null;
        const cost = opt.minimize(() => {
          const pred = model.apply(bx, { training: true }) as tf.Tensor;
          const plain = lossFn(by, pred).mean() as tf.Scalar;
          dataLoss = tf.keep(plain.clone()); // reported: the plan's loss without the added terms
          let total = plain;
          for (const w of model.trainableWeights) {
            const a = anchorOf.get(w.originalName);
            if (a) total = total.add(tf.sum(tf.square(tf.sub(w.read(), a))).mul(reg.mu / 2));
            const l = linearOf.get(w.originalName);
            if (l) total = total.add(tf.sum(tf.mul(w.read(), l)));
          }
          return total;
        }, true, vars);
        const kept = dataLoss as tf.Scalar | null;
        sum += kept ? (await kept.data())[0] : 0;
        batches++;
        steps++;
        tf.dispose([bx, by, cost!, ...(kept ? [kept] : [])]);
        if (Date.now() - lastYield >= yieldMs) {
          await new Promise((r) => setTimeout(r, 0));
          lastYield = Date.now();
        }
      }
      losses.push(sum / Math.max(1, batches));
    }
  } finally {
    tf.dispose([...anchorOf.values(), ...linearOf.values()]);
  }
  return { history: { history: { loss: losses } } as unknown as tf.History, steps };
}
