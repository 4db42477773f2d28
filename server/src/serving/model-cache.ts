import * as tf from '@tensorflow/tfjs';
import { setFlatWeights } from '@flotilla/model';
import { AppError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import { isWeightsVariant, type WeightsVariant } from '../registry/variants.js';
import type { VersionRecord } from '../store/records.js';
import { Batcher, type BatchingConfig, type BatcherStats } from './batcher.js';
import { LatencySet, RateWindow, type LatencySummary } from './histogram.js';
import { ONNX_ARTIFACT, type ModelFormat } from '../registry/model-format.js';
import { onnxIO, type ModelIO } from './model-io.js';
import type { ModelRunner } from './model-runner.js';
import { OnnxRunner } from './onnx-runner.js';
import { loadOnnxRuntime } from './onnx-runtime.js';
import { TfjsRunner } from './tfjs-runner.js';

/**
 * One model version (one weights variant) loaded for serving, with its batcher and its latency
 * histograms. How it computes is its runner's business: tfjs (tfjs-runner.ts) or onnxruntime
 * (onnx-runner.ts).
 */
export class ServedModel {
  readonly io: ModelIO;
  readonly batcher: Batcher;
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
    private readonly runner: ModelRunner,
    /** Estimated resident bytes (float32 weights, or the ONNX file). */
    readonly bytes: number,
    readonly loadMs: number,
    public warmupMs: number,
    batching: BatchingConfig,
  ) {
    this.io = runner.io;
    this.batcher = new Batcher((x, rows) => this.runner.run(x, rows), this.io.rowWidth, this.io.outWidth, batching);
  }

  /**
   * Apply batching settings, starting or retiring instances to match `instances`
   * (resolves once new instances are ready; FL_ERR_SERVING_UNAVAILABLE if they cannot start).
   */
  async configure(b: BatchingConfig): Promise<void> {
    const parallel = await this.runner.configure(b.instances ?? 0, b.maxBatchSize);
    this.batcher.configure(b, parallel);
  }

  /** How this loaded model computes (an ONNX version's distilled student is tfjs). */
  get format(): ModelFormat {
    return this.io.platform === 'onnxruntime' ? 'onnx' : 'tfjs';
  }

  /** Instance statistics (null: tfjs on the main thread). */
  get instances(): { size: number; restarts: number; backend: string } | null {
    return this.runner.instances();
  }

  /** Tests: make one busy instance exit abruptly; false when none is busy. */
  crashInstance(): boolean {
    return this.runner.crashInstance();
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

  /** One forward pass of `rows` packed rows, outside the batcher (warm-up). */
  predict(x: Float32Array, rows: number): Float32Array | Promise<Float32Array> {
    return this.runner.run(x, rows);
  }

  dispose(): void {
    this.runner.dispose();
  }

  info(): ServedModelInfo {
    return {
      model: this.record.model,
      version: this.record.version,
      variant: this.variant,
      format: this.format,
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
  format: ModelFormat;
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
  /** The last entry of `loaded` (most recently used), or null when unknown: a hit on it needs no reordering. */
  private newest: ServedModel | null = null;
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

  /** A loaded version, counted as used (most recently used in the LRU order); null when not loaded. */
  use(model: string, version: number, variant: string = 'float32'): ServedModel | null {
    const key = ModelCache.key(model, version, variant);
    const hit = this.loaded.get(key);
    if (!hit) return null;
    // Map order is recency order (a request path: the common hit on the newest entry moves nothing).
    if (hit !== this.newest) {
      this.loaded.delete(key);
      this.loaded.set(key, hit);
      this.newest = hit;
    }
    hit.lastUsed = Date.now();
    return hit;
  }

  async get(model: string, version: number, variant: string = 'float32'): Promise<ServedModel> {
    if (!isWeightsVariant(variant)) throw new AppError('FL_ERR_VARIANT_NOT_FOUND', { model, version, variant });
    const hit = this.use(model, version, variant);
    if (hit) return hit;
    const key = ModelCache.key(model, version, variant);
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
    // An ONNX version's distilled student is a tfjs model (registry.addStudent).
    const { runner, bytes } = record.onnx && variant !== 'distilled' ? await this.onnxRunner(record, variant) : await this.tfjsRunner(record, variant);
    const loadMs = performance.now() - t0;
    const served = new ServedModel(key, record, variant, runner, bytes, loadMs, 0, this.opts.batching);
    const t1 = performance.now();
    try {
      const warmRows = Math.max(1, this.opts.batching.maxBatchSize);
      await served.predict(new Float32Array(warmRows * served.io.rowWidth), warmRows);
      if (this.opts.batching.instances) await served.configure(this.opts.batching);
    } catch (err) {
      served.dispose();
      throw err;
    }
    served.warmupMs = performance.now() - t1;
    if (this.closed) {
      served.dispose();
      throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'server closing' });
    }
    this.loaded.delete(key);
    this.loaded.set(key, served);
    this.newest = served;
    this.evict(key);
    this.opts.onLoad?.(served);
    return served;
  }

  private checkBytes(record: VersionRecord, bytes: number): void {
    if (bytes > this.opts.maxBytes) throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { model: record.model, version: record.version, why: 'larger than the serving memory bound', bytes, maxBytes: this.opts.maxBytes });
  }

  private async tfjsRunner(record: VersionRecord, variant: WeightsVariant): Promise<{ runner: ModelRunner; bytes: number }> {
    const { model, version } = record;
    const spec = await this.opts.registry.specOf(record, variant);
    const bytes = spec.manifest.reduce((n, w) => n + w.size, 0) * 4;
    this.checkBytes(record, bytes);
    const weights = await this.opts.registry.readWeights(record, variant);
    let tfModel: tf.LayersModel;
    try {
      tfModel = await tf.models.modelFromJSON({ modelTopology: spec.topology } as unknown as tf.io.ModelJSON);
      setFlatWeights(tfModel, weights, spec.manifest);
    } catch (err) {
      throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { model, version, variant, why: `tfjs could not build the model: ${(err as Error).message}` });
    }
    return { runner: new TfjsRunner(tfModel, spec, weights), bytes };
  }

  private async onnxRunner(record: VersionRecord, variant: WeightsVariant): Promise<{ runner: ModelRunner; bytes: number }> {
    if (variant !== 'float32') throw new AppError('FL_ERR_VARIANT_NOT_FOUND', { model: record.model, version: record.version, variant, why: 'ONNX versions have no weights variants but a distilled student' });
    const ort = await loadOnnxRuntime();
    const { bytes } = await this.opts.registry.readArtifact(record, ONNX_ARTIFACT);
    this.checkBytes(record, bytes.byteLength);
    const runner = new OnnxRunner(ort, bytes, onnxIO(record));
    await runner.start();
    return { runner, bytes: bytes.byteLength };
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
    if (this.newest === m) this.newest = null;
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
