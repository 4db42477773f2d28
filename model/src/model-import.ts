import * as tf from '@tensorflow/tfjs';
import { AppError, buildManifest, ImportModelJsonSchema, type ImportModelJson, type ModelSpec } from '@flotilla/protocol';

/**
 * Import of a TensorFlow.js LayersModel as written by `model.save('file://...')` or the
 * TensorFlow.js converter (model.json plus weight shards). `inspectLayersModel` checks the
 * model.json alone (no weight bytes): it parses, tfjs builds the topology, every weight the
 * topology has is in the manifest with the same shape and dtype float32 (nothing extra, nothing
 * quantized), and at least one weight trains. It returns the spec Flotilla stores (topology with
 * the trainable flags applied, manifest in `model.weights` order with frozen entries marked) and,
 * for every manifest entry, where its bytes lie in the uploaded shards, so the caller can stream
 * the weights into Flotilla's flat layout without holding them in memory.
 * Errors: FL_ERR_MODEL_IMPORT_TOPOLOGY, FL_ERR_MODEL_IMPORT_WEIGHTS, FL_ERR_MODEL_IMPORT_NOT_TRAINABLE.
 */

/** Where one manifest entry's bytes are: group `group` is its shards concatenated in `paths` order. */
export interface WeightSource {
  group: number;
  byteOffset: number;
  byteLength: number;
}

export interface InspectedModel {
  spec: ModelSpec;
  /** Parallel to spec.manifest. */
  sources: WeightSource[];
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
 * Per `model.weights` entry, whether it travels (changes on devices): a weight travels when its
 * top-level layer is trainable, non-trainable weights of such layers (batch-norm statistics)
 * included. Servers and devices both derive the marks this way from the stored topology.
 */
export function travelFlags(model: tf.LayersModel): boolean[] {
  const travels = new Map<string, boolean>();
  for (const l of model.layers) for (const w of l.weights) travels.set(w.originalName, l.trainable);
  return model.weights.map((w) => travels.get(w.originalName) ?? true);
}

/**
 * Trainable flags per `model.weights` entry: a weight travels when its top-level layer trains.
 * `trainableLayers` (a plan's) sets which layers train; absent, the topology's own flags count.
 * Sets the layers' `trainable` to match, so the re-serialized topology carries the choice.
 */
export function applyTrainable(model: tf.LayersModel, trainableLayers?: readonly string[]): boolean[] {
  if (trainableLayers) {
    const names = new Set(model.layers.map((l) => l.name));
    const unknown = trainableLayers.filter((n) => !names.has(n));
    if (unknown.length) throw new AppError('FL_ERR_MODEL_IMPORT_NOT_TRAINABLE', { why: 'trainableLayers names layers the model does not have', unknown: unknown.slice(0, 20), layers: [...names].slice(0, 50) });
    const want = new Set(trainableLayers);
    for (const l of model.layers) l.trainable = want.has(l.name);
  }
  const flags = travelFlags(model);
  if (model.trainableWeights.length === 0 || !flags.some(Boolean)) {
    throw new AppError('FL_ERR_MODEL_IMPORT_NOT_TRAINABLE', { why: 'no layer with weights trains', layers: model.layers.map((l) => ({ name: l.name, trainable: l.trainable, weights: l.weights.length })).slice(0, 50) });
  }
  return flags;
}

/** The spec of a built model: topology (with its trainable flags), manifest in model.weights order, input shape, output size. */
export function specOfBuilt(model: tf.LayersModel, flags: boolean[]): ModelSpec {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: `models with one input and one output train here; this one has ${model.inputs.length} and ${model.outputs.length}` });
  }
  const inputShape = (model.inputs[0].shape.slice(1) as Array<number | null>).map((d) => d ?? 1);
  const out = model.outputs[0].shape;
  const numClasses = Math.max(1, (out[out.length - 1] as number | null) ?? 1);
  const manifest = buildManifest(model.weights.map((w, i) => ({ name: w.originalName, shape: w.shape as number[], trainable: flags[i] })));
  const topology = model.toJSON(undefined, false) as unknown as Record<string, unknown>;
  return { topology, manifest, inputShape: inputShape.length ? inputShape : [1], numClasses };
}

export async function inspectLayersModel(json: unknown, trainableLayers?: readonly string[]): Promise<InspectedModel> {
  const mj = parseModelJson(json);
  const model = await buildTopology(mj.modelTopology);
  try {
    const flags = applyTrainable(model, trainableLayers);
    const spec = specOfBuilt(model, flags);
    // Locate every uploaded weight: groups are their shards concatenated, entries laid out in order.
    const located = new Map<string, { source: WeightSource; shape: number[] }>();
    const groups = mj.weightsManifest.map((g, gi) => {
      let byteOffset = 0;
      for (const w of g.weights) {
        if (w.dtype !== 'float32' || w.quantization !== undefined) {
          throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { weight: w.name, why: `dtype ${w.dtype}${w.quantization !== undefined ? ' (quantized)' : ''}; only unquantized float32 weights train` });
        }
        if (located.has(w.name)) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { weight: w.name, why: 'listed twice in the manifest' });
        const byteLength = 4 * w.shape.reduce((a, b) => a * b, 1);
        located.set(w.name, { source: { group: gi, byteOffset, byteLength }, shape: w.shape });
        byteOffset += byteLength;
      }
      return { paths: g.paths, bytes: byteOffset };
    });
    const sources = spec.manifest.map((s) => {
      const l = located.get(s.name);
      if (!l) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { weight: s.name, why: 'the topology has this weight but the manifest does not' });
      if (l.shape.length !== s.shape.length || l.shape.some((d, i) => d !== s.shape[i])) {
        throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { weight: s.name, why: 'shape differs from the topology', manifest: l.shape, topology: s.shape });
      }
      located.delete(s.name);
      return l.source;
    });
    if (located.size) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { why: 'the manifest lists weights the topology does not have', weights: [...located.keys()].slice(0, 20) });
    return { spec, sources, groups };
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
    const next = specOfBuilt(model, flags);
    if (next.manifest.length !== spec.manifest.length || next.manifest.some((s, i) => s.name !== spec.manifest[i].name || s.size !== spec.manifest[i].size)) {
      throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { why: 'the stored manifest does not match the topology' });
    }
    return { ...spec, topology: next.topology, manifest: next.manifest };
  } finally {
    model.dispose();
  }
}
