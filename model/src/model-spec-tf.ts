import * as tf from '@tensorflow/tfjs';
import type { ModelSpec, TensorSignature } from '@flotilla/protocol';
import { AppError, buildManifest, joinFlat, manifestLength, splitFlat, type WeightManifest } from '@flotilla/protocol';

/**
 * Bridges tfjs models and Flotilla's flat-weights world. Contract: `flatWeights(model)` and
 * `setFlatWeights(model, flat, manifest)` are inverse; manifest order is `model.weights` order,
 * names are the weights' original names, so model.json built from the spec loads in tfjs.
 * setFlatWeights and readFlatWeights go by name and accept any manifest order.
 */
export function manifestOf(model: tf.LayersModel): WeightManifest {
  return buildManifest(model.weights.map((w) => ({ name: w.originalName, shape: w.shape as number[] })));
}

export function flatWeights(model: tf.LayersModel): Float32Array {
  const m = manifestOf(model);
  const parts = model.weights.map((w) => w.read().dataSync() as Float32Array);
  return joinFlat(parts, m);
}

/**
 * Write a flat vector into the model's weights by name (the manifest's order need not be
 * `model.weights` order: tfjs lists trainable weights first, so frozen layers reorder it).
 */
/** A Sequential made from JSON builds its inner model lazily (tfjs's own setWeights does this first). */
function ensureBuilt(model: tf.LayersModel): void {
  const s = model as unknown as { built?: boolean; build?: () => void };
  if (model instanceof tf.Sequential && !s.built) s.build!();
}

export function setFlatWeights(model: tf.LayersModel, flat: Float32Array, manifest: WeightManifest): void {
  ensureBuilt(model);
  const parts = splitFlat(flat, manifest);
  const byName = new Map(model.weights.map((w) => [w.originalName, w]));
  manifest.forEach((s, i) => {
    const w = byName.get(s.name);
    if (!w) throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { weight: s.name, why: 'the model has no weight of this name' });
    const t = tf.tensor(parts[i], s.shape, 'float32');
    w.write(t);
    t.dispose();
  });
}

/** The model's weights as a flat vector laid out by `manifest` (read by name). */
export function readFlatWeights(model: tf.LayersModel, manifest: WeightManifest): Float32Array {
  ensureBuilt(model);
  const byName = new Map(model.weights.map((w) => [w.originalName, w]));
  const out = new Float32Array(manifestLength(manifest));
  for (const s of manifest) {
    const w = byName.get(s.name);
    if (!w) throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { weight: s.name, why: 'the model has no weight of this name' });
    out.set(w.read().dataSync() as Float32Array, s.offset);
  }
  return out;
}

/** Spec plus initial weights of a built model. */
export function specOf(model: tf.LayersModel, numClasses: number): { spec: ModelSpec; weights: Float32Array } {
  const topology = model.toJSON(undefined, false) as unknown as Record<string, unknown>;
  const inputShape = (model.inputs[0].shape.slice(1) as number[]).map((d) => d ?? 1);
  return { spec: { topology, manifest: manifestOf(model), inputShape, numClasses }, weights: flatWeights(model) };
}

/**
 * The inputs and outputs of a built model, in its order (what `model.predict` takes and gives):
 * names, dtypes and shapes with -1 for the batch dimension and any other dynamic one.
 */
export function tfjsSignature(model: tf.LayersModel): { inputs: TensorSignature[]; outputs: TensorSignature[] } {
  ensureBuilt(model); // a Sequential made from JSON names its inputs and outputs once built
  const one = (name: string, t: tf.SymbolicTensor): TensorSignature => ({
    name,
    dtype: t.dtype === 'int32' ? 'int32' : 'float32',
    shape: (t.shape as Array<number | null>).map((d) => d ?? -1),
  });
  return { inputs: model.inputs.map((t, k) => one(model.inputNames[k], t)), outputs: model.outputs.map((t, k) => one(model.outputNames[k], t)) };
}

/** Rebuild a tfjs model (untrained, not compiled) from a spec's topology. */
export async function modelFromSpec(spec: ModelSpec): Promise<tf.LayersModel> {
  return tf.models.modelFromJSON({ modelTopology: spec.topology } as unknown as tf.io.ModelJSON);
}
