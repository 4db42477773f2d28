import * as tf from '@tensorflow/tfjs';
import { AppError, buildManifest, ImportModelJsonSchema, type ImportModelJson, type ModelSpec } from '@flotilla/protocol';
import { tfjsSignature } from './model-spec-tf.js';

/**
 * Import of a TensorFlow.js LayersModel as written by `model.save('file://...')` or the
 * TensorFlow.js converter (model.json plus weight shards). `inspectLayersModel` checks the
 * model.json alone (no weight bytes): it parses, tfjs builds the topology, every weight the
 * topology has is in the manifest with the same shape and dtype float32 (nothing extra, nothing
 * quantized), and at least one weight trains. It returns the spec Flotilla stores (topology with
 * the trainable flags applied, manifest in the upload's order with frozen entries marked), so the
 * caller can stream the shards as Flotilla's flat weights without holding them in memory.
 * Errors: FL_ERR_MODEL_IMPORT_TOPOLOGY, FL_ERR_MODEL_IMPORT_WEIGHTS, FL_ERR_MODEL_IMPORT_NOT_TRAINABLE.
 */

export interface InspectedModel {
  /** Manifest in the upload's order: the flat weights are the groups' shards concatenated. */
  spec: ModelSpec;
  /** Shard paths of each weights group, and the bytes each group must hold in total. */
  groups: Array<{ paths: string[]; bytes: number }>;
}

/** A copy of the topology with every initializer replaced by zeros, so building it is cheap (no random init of a large model). */
function zeroInitialized(topology: unknown): unknown {
  if (Array.isArray(topology)) return topology.map(zeroInitialized);
  if (topology && typeof topology === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(topology)) {
      out[k] = /_initializer$/.test(k) && v && typeof v === 'object' ? { class_name: 'Zeros', config: {} } : zeroInitialized(v);
    }
    return out;
  }
  return topology;
}

export function parseModelJson(json: unknown): ImportModelJson {
  const parsed = ImportModelJsonSchema.safeParse(json);
  if (!parsed.success) {
    const format = (json as { format?: unknown } | null)?.format;
    const why = format === 'graph-model' ? 'a graph model (only LayersModels train)' : 'model.json lacks modelTopology or weightsManifest';
    throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why, issues: parsed.error.issues.slice(0, 5) });
  }
  return parsed.data;
}

/** Build a (zero-initialized) tfjs model from a topology; FL_ERR_MODEL_IMPORT_TOPOLOGY when tfjs cannot. */
export async function buildTopology(topology: Record<string, unknown>): Promise<tf.LayersModel> {
  try {
    return await tf.models.modelFromJSON({ modelTopology: zeroInitialized(topology) } as unknown as tf.io.ModelJSON);
  } catch (err) {
    throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: `tfjs cannot build the topology: ${String((err as Error)?.message ?? err).slice(0, 300)}` });
  }
}

/**
 * Whether each weight travels (changes on devices), by weight name: a weight travels when its
 * top-level layer is trainable, non-trainable weights of such layers (batch-norm statistics)
 * included. Servers and devices both derive the marks this way from the stored topology. Keyed by
 * name because tfjs orders `model.weights` trainable-first, so freezing a layer reorders it.
 */
export function travelFlags(model: tf.LayersModel): Map<string, boolean> {
  const travels = new Map<string, boolean>();
  for (const l of model.layers) for (const w of l.weights) travels.set(w.originalName, l.trainable);
  for (const w of model.weights) if (!travels.has(w.originalName)) travels.set(w.originalName, true);
  return travels;
}

/**
 * Apply a plan's `trainableLayers` (names of top-level layers; absent: the topology's own flags)
 * to the model's layers, so the re-serialized topology carries the choice. Refuses unknown names
 * and a model where nothing trains (FL_ERR_MODEL_IMPORT_NOT_TRAINABLE).
 */
export function applyTrainable(model: tf.LayersModel, trainableLayers?: readonly string[]): Map<string, boolean> {
  if (trainableLayers) {
    const names = new Set(model.layers.map((l) => l.name));
    const unknown = trainableLayers.filter((n) => !names.has(n));
    if (unknown.length) throw new AppError('FL_ERR_MODEL_IMPORT_NOT_TRAINABLE', { why: 'trainableLayers names layers the model does not have', unknown: unknown.slice(0, 20), layers: [...names].slice(0, 50) });
    const want = new Set(trainableLayers);
    for (const l of model.layers) l.trainable = want.has(l.name);
  }
  const flags = travelFlags(model);
  if (model.trainableWeights.length === 0 || ![...flags.values()].some(Boolean)) {
    throw new AppError('FL_ERR_MODEL_IMPORT_NOT_TRAINABLE', { why: 'no layer with weights trains', layers: model.layers.map((l) => ({ name: l.name, trainable: l.trainable, weights: l.weights.length })).slice(0, 50) });
  }
  return flags;
}

/**
 * What an import is for: `train` (a task's model: one input and one output) or `serve` (a
 * registry version, which may have several inputs and outputs of fixed shapes but the batch).
 */
export type ImportPurpose = 'train' | 'serve';

/**
 * The spec of a built model with its weights laid out in `order` (names and shapes, e.g. an
 * uploaded manifest): every weight of the model exactly once with its shape, frozen ones marked,
 * and the model's signature. `inputShape` and `numClasses` describe the first input and output.
 */
export function specOfBuilt(model: tf.LayersModel, flags: Map<string, boolean>, order: ReadonlyArray<{ name: string; shape: readonly number[] }>, purpose: ImportPurpose = 'train'): ModelSpec {
  const signature = tfjsSignature(model);
  const several = model.inputs.length !== 1 || model.outputs.length !== 1;
  if (several && purpose === 'train') {
    throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: `models with one input and one output train here; this one has ${model.inputs.length} and ${model.outputs.length} (models with several are served: upload them with flotilla models import)` });
  }
  if (several) {
    const dynamic = [...signature.inputs, ...signature.outputs].find((t) => t.shape.slice(1).some((d) => d < 0));
    if (dynamic) throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: 'a model with several inputs or outputs is served with fixed dimensions after the batch', tensor: dynamic.name, shape: dynamic.shape });
    if (signature.inputs.length > 16 || signature.outputs.length > 16) throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: 'at most 16 inputs and 16 outputs', inputs: signature.inputs.length, outputs: signature.outputs.length });
  }
  const shapes = new Map(model.weights.map((w) => [w.originalName, w.shape as number[]]));
  const seen = new Set<string>();
  for (const e of order) {
    const want = shapes.get(e.name);
    if (!want) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { why: 'the manifest lists a weight the topology does not have', weight: e.name });
    if (seen.has(e.name)) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { weight: e.name, why: 'listed twice in the manifest' });
    seen.add(e.name);
    if (want.length !== e.shape.length || want.some((d, i) => d !== e.shape[i])) {
      throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { weight: e.name, why: 'shape differs from the topology', manifest: e.shape, topology: want });
    }
  }
  const lacking = [...shapes.keys()].filter((n) => !seen.has(n));
  if (lacking.length) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { why: 'the topology has weights the manifest does not', weights: lacking.slice(0, 20) });
  const inputShape = (model.inputs[0].shape.slice(1) as Array<number | null>).map((d) => d ?? 1);
  const out = model.outputs[0].shape;
  const numClasses = Math.max(1, (out[out.length - 1] as number | null) ?? 1);
  const manifest = buildManifest(order.map((e) => ({ name: e.name, shape: e.shape, trainable: flags.get(e.name) ?? true })));
  const topology = model.toJSON(undefined, false) as unknown as Record<string, unknown>;
  return { topology, manifest, inputShape: inputShape.length ? inputShape : [1], numClasses, signature };
}

/**
 * Check a model.json (no weight bytes) and return its spec. The manifest keeps the upload's
 * order, so Flotilla's flat weights are the groups' shards concatenated in order: the import
 * streams them as they are.
 */
export async function inspectLayersModel(json: unknown, trainableLayers?: readonly string[], purpose: ImportPurpose = 'train'): Promise<InspectedModel> {
  const mj = parseModelJson(json);
  for (const g of mj.weightsManifest) {
    for (const w of g.weights) {
      if (w.dtype !== 'float32' || w.quantization !== undefined) {
        throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { weight: w.name, why: `dtype ${w.dtype}${w.quantization !== undefined ? ' (quantized)' : ''}; only unquantized float32 weights train` });
      }
    }
  }
  const model = await buildTopology(mj.modelTopology);
  try {
    const flags = applyTrainable(model, trainableLayers);
    const spec = specOfBuilt(model, flags, mj.weightsManifest.flatMap((g) => g.weights), purpose);
    const groups = mj.weightsManifest.map((g) => ({ paths: g.paths, bytes: 4 * g.weights.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0) }));
    return { spec, groups };
  } finally {
    model.dispose();
  }
}

/**
 * The spec for a model that already has one (a registry version), with a plan's trainableLayers
 * applied. Same errors as inspectLayersModel; the manifest keeps its order and sizes.
 */
export async function respec(spec: ModelSpec, trainableLayers?: readonly string[]): Promise<ModelSpec> {
  const model = await buildTopology(spec.topology);
  try {
    const flags = applyTrainable(model, trainableLayers);
    const next = specOfBuilt(model, flags, spec.manifest);
    return { ...spec, topology: next.topology, manifest: next.manifest, signature: next.signature };
  } finally {
    model.dispose();
  }
}
