import * as tf from '@tensorflow/tfjs';
import { packRows, unpackRows, type ModelIO } from './model-io.js';

/**
 * How a model's forward pass runs, chosen once per model (cached per model object):
 * - `chain`: a Sequential model whose layers are all in CHAIN_LAYERS runs each layer's own
 *   `call` in turn on the batch tensor: the same kernels in the same order as `predict` (a Dense
 *   layer's call is one fused matMul with its bias and activation), without what `predict` and
 *   `Layer.apply` add per call and per layer for a serving batch that is already validated (input
 *   checks, a slice copy of the whole batch, a feed dictionary, name scopes, symbolic bookkeeping,
 *   a concat of the outputs). docs/serving.md ("Fourth pass: per-row model cost") has the measurements. The
 *   plan is only taken when its output on a probe batch equals `predict`'s exactly.
 * - `execute`: any other LayersModel, through `model.execute` on its output names (the graph
 *   executor `predict` itself runs, without `predict`'s slice and concat of the batch).
 */
type Plan = { kind: 'chain'; layers: tf.layers.Layer[] } | { kind: 'execute'; outputs: string[] };

/** Layers whose `call` is the whole of their inference (no masks, state or symbolic-only work). */
const CHAIN_LAYERS = new Set(['Dense', 'Activation', 'Dropout', 'Flatten', 'Reshape', 'Conv2D', 'MaxPooling2D', 'AveragePooling2D']);

const plans = new WeakMap<tf.LayersModel, Plan>();

function planOf(model: tf.LayersModel, io: ModelIO): Plan {
  let plan = plans.get(model);
  if (!plan) {
    plan = { kind: 'execute', outputs: model.outputs.map((o) => o.name) };
    if (model instanceof tf.Sequential && io.inputs.length === 1 && io.outputs.length === 1 && io.inputs[0].datatype === 'FP32' && model.layers.every((l) => CHAIN_LAYERS.has(l.getClassName()))) {
      const chain: Plan = { kind: 'chain', layers: model.layers };
      if (sameAsPredict(model, io, chain)) plan = chain;
    }
    plans.set(model, plan);
  }
  return plan;
}

/** Whether `plan` gives exactly what `model.predict` gives on a probe batch of 3 rows. */
function sameAsPredict(model: tf.LayersModel, io: ModelIO, plan: Plan): boolean {
  const rows = 3;
  const x = new Float32Array(rows * io.rowWidth).map((_, i) => Math.sin(i * 0.37) * 2);
  return tf.tidy(() => {
    const ref = (model.predict(tf.tensor(x, [rows, ...io.inputs[0].shape], 'float32')) as tf.Tensor).dataSync();
    const got = forward(model, plan, [tf.tensor(x, [rows, ...io.inputs[0].shape], 'float32')])[0].dataSync();
    return ref.length === got.length && ref.every((v, i) => Object.is(v, got[i]));
  });
}

function forward(model: tf.LayersModel, plan: Plan, feeds: tf.Tensor[]): tf.Tensor[] {
  if (plan.kind === 'execute') return model.execute(feeds.length === 1 ? feeds[0] : feeds, plan.outputs) as tf.Tensor[];
  let t = feeds[0];
  for (const layer of plan.layers) t = layer.call(t, { training: false }) as tf.Tensor;
  return [t];
}

/**
 * One forward pass of a tfjs LayersModel over `rows` packed rows (model-io.ts): split into one
 * tensor per input in the model's input order (INT32 inputs as int32 tensors), and every output
 * packed back as float32 rows, in one forward pass whatever the number of rows. Used on the main thread (tfjs-runner.ts) and in model instances
 * (instance-worker.ts), so both compute exactly the same way.
 */
export function predictPacked(model: tf.LayersModel, io: ModelIO, x: Float32Array, rows: number): Float32Array {
  const plan = planOf(model, io);
  // The tidy scope returns the output tensors, never their values: tidy walks what its function
  // returns looking for tensors, which for a typed array means every element (a for-in over the
  // indices and a Set of the values), ~2 µs per value: at 64 rows three quarters of the forward pass.
  const outs = tf.tidy(() => {
    const parts = unpackRows(x, io.inputs, io.rowWidth, rows);
    const feeds = io.inputs.map((t, k) => (t.datatype === 'INT32' ? tf.tensor(Int32Array.from(parts[k]), [rows, ...t.shape], 'int32') : tf.tensor(parts[k], [rows, ...t.shape], 'float32')));
    return forward(model, plan, feeds);
  });
  try {
    const blocks = outs.map((o) => {
      const d = o.dataSync();
      return d instanceof Float32Array ? d : Float32Array.from(d);
    });
    return packRows(blocks, io.outputs, io.outWidth, rows);
  } finally {
    tf.dispose(outs);
  }
}

/** Which forward pass predictPacked uses for `model` (for the benchmark and tests). */
export function forwardKind(model: tf.LayersModel, io: ModelIO): Plan['kind'] {
  return planOf(model, io).kind;
}
