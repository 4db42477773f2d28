import * as tf from '@tensorflow/tfjs';
import { setFlatWeights } from '@flotilla/model';
import { AppError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import { isWeightsVariant, type WeightsVariant } from '../registry/variants.js';
import type { VersionRecord } from '../store/records.js';
import { Batcher, type BatchingConfig, type BatcherStats } from './batcher.js';
import { InstancePool } from './instance-pool.js';
import { LatencySet, RateWindow, type LatencySummary } from './histogram.js';
import type { ModelIO } from './infer-input.js';

/**
 * One model version (one weights variant) loaded into tfjs for serving, with its batcher and its
 * latency histograms. Inference runs on the process-wide tfjs backend (wasm here; tfjs-node when
 * installed), which the serving layer resolves once before the first load.
 */
export class ServedModel {
  readonly io: ModelIO;
  readonly batcher: Batcher;
  /** Worker-thread instances (`batching.instances` > 0); null: inference runs on the main thread. */
  private pool: InstancePool | null = null;
  readonly latency = new LatencySet();
  readonly rate = new RateWindow();
  requests = 0;
  errors = 0;
  lastUsed = Date.now();
  readonly loadedAt = Date.now();

  constructor(
    readonly key: string,
    readonly record: VersionRecord,
    readonly variant: WeightsVariant,
    private readonly model: tf.LayersModel,
    /** Estimated resident bytes (float32 weights). */
    readonly bytes: number,
    readonly loadMs: number,
    public warmupMs: number,
    batching: BatchingConfig,
    /** The weights the model was built from (instances build their copies from them). */
    private readonly weights: Float32Array,
  ) {
    const inputShape = record.spec.inputShape;
    const outShape = (model.outputs[0].shape.slice(1) as Array<number | null>).map((d) => d ?? 1);
    this.io = {
      inputName: model.inputNames[0],
      inputShape,
      rowWidth: inputShape.reduce((a, b) => a * b, 1),
      outputName: model.outputNames[0],
      outputShape: outShape,
      outWidth: outShape.reduce((a, b) => a * b, 1),
    };
    this.batcher = new Batcher((x, rows) => (this.pool ? this.pool.run(x, rows) : this.predict(x, rows)), this.io.rowWidth, this.io.outWidth, batching);
  }

  /**
   * Apply batching settings, starting or retiring worker instances to match `instances`
   * (resolves once new instances are ready; FL_ERR_SERVING_UNAVAILABLE if they cannot start).
   */
  async configure(b: BatchingConfig): Promise<void> {
    const n = b.instances ?? 0;
    if (n > 0) {
      if (!this.pool) {
        const pool = new InstancePool({ spec: this.record.spec, weights: this.weights, rowWidth: this.io.rowWidth, outWidth: this.io.outWidth, rows: Math.max(1, b.maxBatchSize) });
        try {
          await pool.resize(n);
        } catch (err) {
          await pool.close();
          throw err;
        }
        this.pool = pool;
      } else await this.pool.resize(n);
    } else if (this.pool) {
      const old = this.pool;
      this.pool = null;
      void old.resize(0);
    }
    this.batcher.configure(b, Math.max(1, n));
  }

  /** Instance statistics (null on the main thread). */
  get instances(): { size: number; restarts: number; backend: string } | null {
    return this.pool ? { size: this.pool.size, restarts: this.pool.restarts, backend: this.pool.backend } : null;
  }

  /** Tests: make one busy instance exit abruptly; false when none is busy. */
  crashInstance(): boolean {
    return this.pool?.crashOne() ?? false;
  }

  /** One request answered (shadow copies included). */
  observe(queueMs: number, computeMs: number, totalMs: number): void {
    this.requests++;
    this.rate.add();
    this.lastUsed = Date.now();
    this.latency.record(queueMs, computeMs, totalMs);
  }

  get coldStartMs(): number {
    return this.loadMs + this.warmupMs;
  }

  /** Synchronous forward pass of `rows` rows. */
  predict(x: Float32Array, rows: number): Float32Array {
    return tf.tidy(() => {
      const out = this.model.predict(tf.tensor(x, [rows, ...this.io.inputShape], 'float32')) as tf.Tensor;
      return out.dataSync() as Float32Array;
    });
  }

  dispose(): void {
    this.model.dispose();
    void this.pool?.close();
    this.pool = null;
  }

  info(): ServedModelInfo {
    return {
      model: this.record.model,
      version: this.record.version,
      variant: this.variant,
      bytes: this.bytes,
      loadedAt: this.loadedAt,
      lastUsed: this.lastUsed,
      coldStartMs: { load: round(this.loadMs), warmup: round(this.warmupMs), total: round(this.coldStartMs) },
      requests: this.requests,
      errors: this.errors,
      throughput: round(this.rate.perSecond()),
      latencyMs: this.latency.summary(),
      batching: this.batcher.settings,
      batcher: this.batcher.stats(),
      instances: this.instances,
      io: this.io,
    };
  }
}

export interface ServedModelInfo {
  model: string;
  version: number;
  variant: WeightsVariant;
  bytes: number;
  loadedAt: number;
  lastUsed: number;
  coldStartMs: { load: number; warmup: number; total: number };
  requests: number;
  errors: number;
  throughput: number;
  latencyMs: { queue: LatencySummary; compute: LatencySummary; total: LatencySummary };
  batching: BatchingConfig;
  batcher: BatcherStats;
  instances: { size: number; restarts: number; backend: string } | null;
  io: ModelIO;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export interface ModelCacheOptions {
  registry: Registry;
  /** Resident bytes of all loaded versions together; least recently used ones are unloaded beyond it. */
  maxBytes: number;
  batching: BatchingConfig;
  /** Resolves the tfjs backend once (called before the first load). */
  ready: () => Promise<unknown>;
  /** Called after each load with its cold-start breakdown. */
  onLoad?: (m: ServedModel) => void;
}

/**
 * Loaded versions, LRU under a memory bound. Contracts:
 *  - `get` loads a version on demand (weights of any variant from the registry, verified), builds
 *    it in tfjs and warms it with one dummy batch of maxBatchSize rows; concurrent gets of one key
 *    share one load; a failed load is not cached;
 *  - after a load, least recently used versions are unloaded until the total fits `maxBytes`
 *    (never the one just loaded); an unloaded version finishes its queued requests first;
 *  - a single version larger than `maxBytes` answers FL_ERR_SERVING_UNAVAILABLE.
 */
export class ModelCache {
  private readonly loaded = new Map<string, ServedModel>();
  private readonly loading = new Map<string, Promise<ServedModel>>();
  private closed = false;

  constructor(private readonly opts: ModelCacheOptions) {}

  static key(model: string, version: number, variant: string): string {
    return `${model}\u0000${version}\u0000${variant}`;
  }

  /** A loaded version, or null (no load). */
  peek(model: string, version: number, variant: WeightsVariant = 'float32'): ServedModel | null {
    return this.loaded.get(ModelCache.key(model, version, variant)) ?? null;
  }

  isLoading(model: string, version: number, variant: WeightsVariant = 'float32'): boolean {
    return this.loading.has(ModelCache.key(model, version, variant));
  }

  async get(model: string, version: number, variant: string = 'float32'): Promise<ServedModel> {
    if (!isWeightsVariant(variant)) throw new AppError('FL_ERR_VARIANT_NOT_FOUND', { model, version, variant });
    const key = ModelCache.key(model, version, variant);
    const hit = this.loaded.get(key);
    if (hit) {
      // Map order is recency order.
      this.loaded.delete(key);
      this.loaded.set(key, hit);
      hit.lastUsed = Date.now();
      return hit;
    }
    let p = this.loading.get(key);
    if (!p) {
      p = this.load(key, model, version, variant).finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private async load(key: string, model: string, version: number, variant: WeightsVariant): Promise<ServedModel> {
    if (this.closed) throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'server closing' });
    await this.opts.ready();
    const t0 = performance.now();
    const record = await this.opts.registry.getVersion(model, version);
    const params = record.spec.manifest.reduce((n, w) => n + w.size, 0);
    const bytes = params * 4;
    if (bytes > this.opts.maxBytes) throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { model, version, why: 'larger than the serving memory bound', bytes, maxBytes: this.opts.maxBytes });
    const weights = await this.opts.registry.readWeights(record, variant);
    let tfModel: tf.LayersModel;
    try {
      tfModel = await tf.models.modelFromJSON({ modelTopology: record.spec.topology } as unknown as tf.io.ModelJSON);
      setFlatWeights(tfModel, weights, record.spec.manifest);
    } catch (err) {
      throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { model, version, variant, why: `tfjs could not build the model: ${(err as Error).message}` });
    }
    if (tfModel.inputs.length !== 1 || tfModel.outputs.length !== 1) {
      tfModel.dispose();
      throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { model, version, why: 'serving supports models with one input and one output' });
    }
    const loadMs = performance.now() - t0;
    const served = new ServedModel(key, record, variant, tfModel, bytes, loadMs, 0, this.opts.batching, weights);
    const t1 = performance.now();
    const warmRows = Math.max(1, this.opts.batching.maxBatchSize);
    served.predict(new Float32Array(warmRows * served.io.rowWidth), warmRows);
    if (this.opts.batching.instances) {
      try {
        await served.configure(this.opts.batching);
      } catch (err) {
        served.dispose();
        throw err;
      }
    }
    served.warmupMs = performance.now() - t1;
    if (this.closed) {
      served.dispose();
      throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'server closing' });
    }
    this.loaded.set(key, served);
    this.evict(key);
    this.opts.onLoad?.(served);
    return served;
  }

  private evict(keep: string): void {
    let total = 0;
    for (const m of this.loaded.values()) total += m.bytes;
    for (const [key, m] of this.loaded) {
      if (total <= this.opts.maxBytes) break;
      if (key === keep) continue;
      this.unload(key);
      total -= m.bytes;
    }
  }

  /** Unload one version (its queued requests still run). */
  unload(key: string): boolean {
    const m = this.loaded.get(key);
    if (!m) return false;
    this.loaded.delete(key);
    m.batcher.close(() => m.dispose());
    return true;
  }

  list(): ServedModel[] {
    return [...this.loaded.values()];
  }

  get totalBytes(): number {
    let total = 0;
    for (const m of this.loaded.values()) total += m.bytes;
    return total;
  }

  close(): void {
    this.closed = true;
    for (const key of [...this.loaded.keys()]) this.unload(key);
  }
}
