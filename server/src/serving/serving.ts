import { AppError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { WeightsVariant } from '../registry/variants.js';
import type { DeploymentRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { Rng } from './bandit.js';
import { DEFAULT_BATCHING, type BatchingConfig } from './batcher.js';
import { deploymentStats } from './deployment-stats.js';
import { FeedbackLedger } from './feedback-ledger.js';
import type { FeatureStats } from './drift.js';
import { InputReferences, type ConfirmedReference, type DriftReport, type ReferenceWindow } from './input-reference.js';
import type { ParsedInput } from './infer-input.js';
import type { ModelIO } from './model-io.js';
import { ModelCache, type ServedModel, type ServedModelInfo } from './model-cache.js';
import { PayloadLog } from './payload-log.js';
import { resolveServingOptions, type ResolvedServingOptions, type ServingOptions } from './serving-options.js';
import { DeploymentRuntime, TargetStats, targetsOf, type Target } from './router.js';

export type { ServingOptions };

export interface ServingDeps {
  store: Store;
  registry: Registry;
  /** Resolves the tfjs backend (once per process). */
  backend: () => Promise<string>;
  logger: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

export interface InferRequest {
  /** A deployment name, else a model name. */
  endpoint: string;
  /** An explicit version number or alias: bypasses routing and shadowing. */
  ref?: string;
  variant?: string;
  requestId: string;
  /** Sticky split key. */
  routingKey?: string;
  parse(io: ModelIO, maxRows: number): ParsedInput;
}

export interface InferResult {
  model: string;
  version: number;
  variant: WeightsVariant;
  deployment?: string;
  requestId: string;
  output: Float32Array;
  rows: number;
  io: ModelIO;
  queueMs: number;
  computeMs: number;
  totalMs: number;
}

export type DeploymentInput = Pick<DeploymentRecord, 'name' | 'model' | 'routing' | 'batching' | 'feedback' | 'description'>;

const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const codeOf = (err: unknown): string => (err instanceof AppError ? err.code : 'FL_ERR_INTERNAL');

/**
 * Model serving: deployments and their routing, the model cache with per-version batchers,
 * latency statistics, bandit feedback, shadow comparison, the sampled payload log and drift.
 * Contracts:
 *  - `infer` resolves endpoint -> target -> version -> loaded model, parses the input against
 *    that model, and answers through the version's batcher; every result names the version;
 *  - input errors are FL_ERR_SERVING_BAD_INPUT (400), a full queue FL_ERR_SERVING_OVERLOADED (429),
 *    a request queued too long FL_ERR_SERVING_TIMEOUT (504); none of them crash or hang;
 *  - a shadow copy is submitted once the primary has its answer; it never changes that answer,
 *    and its failures only count in the shadow statistics (it does share the CPU);
 *  - deployments are stored through the Store; bandit posteriors are written back within ~1 s.
 */
export class Serving {
  readonly cache: ModelCache;
  readonly payloads: PayloadLog;
  private readonly runtimes = new Map<string, DeploymentRuntime>();
  private readonly resolved = new Map<string, { version: number; at: number }>();
  private readonly ledger: FeedbackLedger;
  /** Models asked for without a deployment or version: their `latest` is kept warm. */
  private readonly servedLatest = new Set<string>();
  private readonly references: InputReferences;
  /** Which deployment's batching a loaded version runs with: the most recently updated one that routes to it. */
  private readonly configuredBy = new WeakMap<ServedModel, { name: string; updatedAt: number }>();
  private readonly defaults: BatchingConfig;
  private readonly opts: ResolvedServingOptions;
  private readonly rng: Rng;
  private timers: NodeJS.Timeout[] = [];
  private markStarted: () => void = () => undefined;
  /** Pending until `start()` has preloaded (a replica starts serving only after its first registry sync). */
  private preloaded = new Promise<void>((resolve) => (this.markStarted = resolve));
  private isReady = false;
  backendName = '';

  constructor(
    private readonly deps: ServingDeps,
    options: ServingOptions = {},
  ) {
    this.opts = resolveServingOptions(options);
    this.rng = options.rng ?? Math.random;
    this.ledger = new FeedbackLedger(this.opts.feedbackCapacity);
    this.defaults = { ...DEFAULT_BATCHING, ...options.batching };
    this.cache = new ModelCache({
      registry: deps.registry,
      maxBytes: this.opts.maxModelBytes,
      batching: this.defaults,
      ready: async () => (this.backendName = await deps.backend()),
      onLoad: (m) => {
        deps.logger.info({ model: m.record.model, version: m.record.version, variant: m.variant, coldStartMs: m.coldStartMs }, 'serving: version loaded');
      },
    });
    this.references = new InputReferences(deps.store, deps.registry);
    this.payloads = new PayloadLog(deps.store, {
      rate: this.opts.payloadSampleRate,
      capPerModel: this.opts.payloadCapPerModel,
      onError: (err) => deps.logger.warn({ err }, 'serving: payload log write failed'),
    });
  }

  get store(): Store {
    return this.deps.store;
  }

  get maxRowsPerRequest(): number {
    return this.opts.maxRowsPerRequest;
  }

  /** Load stored deployments; preload and warm their targets in the background (see `whenReady`). */
  async start(): Promise<void> {
    for (const d of await this.deps.store.listDeployments()) this.runtimes.set(d.name, new DeploymentRuntime(d, this.rng));
    const preload = this.opts.preload ? Promise.allSettled([...this.runtimes.values()].map((rt) => this.warm(rt))) : Promise.resolve();
    void preload.then(() => {
      this.isReady = true;
      this.markStarted();
    });
    const flush = setInterval(() => void this.persistBandits(), 1000);
    flush.unref();
    this.timers.push(flush);
    if (this.opts.warmIntervalMs > 0) {
      const watch = setInterval(() => void this.syncDeployments().then(() => this.refreshAliases()), this.opts.warmIntervalMs);
      watch.unref();
      this.timers.push(watch);
    }
  }

  /** Resolves once deployments named at start are loaded and warmed (failures are logged, not thrown). */
  whenReady(): Promise<void> {
    return this.preloaded;
  }

  ready(): boolean {
    return this.isReady;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.persistBandits();
    await this.payloads.flush();
    this.cache.close();
  }

  // ---- resolution ----

  /** Version number of a ref ("3", "latest", "production"), cached for aliasTtlMs. */
  async resolveRef(model: string, ref: string, fresh = false): Promise<number> {
    const key = `${model}\u0000${ref}`;
    const hit = this.resolved.get(key);
    if (!fresh && hit && Date.now() - hit.at < this.opts.aliasTtlMs) return hit.version;
    const { record } = await this.deps.registry.resolve(model, ref);
    this.resolved.set(key, { version: record.version, at: Date.now() });
    return record.version;
  }

  /**
   * A new version of `model` was published, or one of its aliases moved (the coordinator's publish
   * hook and the registry's onAliasChanged, see app.ts): forget
   * its cached alias resolutions so the next request resolves `latest` (and any alias) afresh, and
   * warm what moved in the background. Never throws.
   */
  published(model: string): void {
    for (const key of [...this.resolved.keys()]) if (key.startsWith(`${model}\u0000`)) this.resolved.delete(key);
    if (!this.servedLatest.has(model) && ![...this.runtimes.values()].some((rt) => rt.record.model === model)) return;
    void this.refreshAliases().catch((err) => this.deps.logger.warn({ err, model }, 'serving: warming a published version failed'));
  }

  private runtime(name: string): DeploymentRuntime | null {
    return this.runtimes.get(name) ?? null;
  }

  private async load(model: string, target: Pick<Target, 'ref' | 'variant'>, rt: DeploymentRuntime | null): Promise<ServedModel> {
    const version = await this.resolveRef(model, target.ref);
    const served = await this.cache.get(model, version, target.variant);
    if (rt?.record.batching) {
      const { name, updatedAt } = rt.record;
      const prev = this.configuredBy.get(served);
      if (!prev || (prev.name === name ? prev.updatedAt !== updatedAt : updatedAt > prev.updatedAt)) {
        this.configuredBy.set(served, { name, updatedAt });
        await served.configure({ ...this.defaults, ...rt.record.batching });
      }
    }
    return served;
  }

  /**
   * What `load` would give without waiting: the loaded model of a target whose ref resolved within
   * aliasTtlMs and whose batching needs no change; null otherwise (then `load`). Per request, it
   * saves the promises of `load`, `resolveRef` and `cache.get`.
   */
  private loadedNow(model: string, target: Pick<Target, 'ref' | 'variant'>, rt: DeploymentRuntime | null): ServedModel | null {
    const hit = this.resolved.get(`${model}\u0000${target.ref}`);
    if (!hit || Date.now() - hit.at >= this.opts.aliasTtlMs) return null;
    const served = this.cache.use(model, hit.version, target.variant);
    if (!served || served.batcher.isClosed) return null;
    if (rt?.record.batching) {
      const { name, updatedAt } = rt.record;
      const prev = this.configuredBy.get(served);
      if (!prev || (prev.name === name ? prev.updatedAt !== updatedAt : updatedAt > prev.updatedAt)) return null;
    }
    return served;
  }

  /** Load and warm every target of a deployment. */
  private async warm(rt: DeploymentRuntime): Promise<void> {
    await Promise.all(
      rt.targets.map((t) =>
        this.load(rt.record.model, t, rt).catch((err) => this.deps.logger.warn({ err, deployment: rt.record.name, target: t.key }, 'serving: preload failed')),
      ),
    );
  }

  /**
   * Follow deployment changes other nodes made in the shared store: add new ones (warmed), apply
   * changed ones, drop deleted ones. Bandit arms learned here are kept (see DeploymentRuntime.configure).
   */
  async syncDeployments(): Promise<void> {
    let stored: DeploymentRecord[];
    try {
      stored = await this.deps.store.listDeployments();
    } catch (err) {
      this.deps.logger.warn({ err }, 'serving: could not list deployments');
      return;
    }
    const names = new Set(stored.map((d) => d.name));
    for (const name of [...this.runtimes.keys()]) if (!names.has(name)) this.runtimes.delete(name);
    for (const d of stored) {
      const rt = this.runtimes.get(d.name);
      if (!rt) {
        const fresh = new DeploymentRuntime(d, this.rng);
        this.runtimes.set(d.name, fresh);
        void this.warm(fresh);
      } else if (rt.record.updatedAt !== d.updatedAt && !rt.dirty) {
        const targetsChanged = JSON.stringify(rt.record.routing) !== JSON.stringify(d.routing);
        rt.configure(d);
        if (targetsChanged) void this.warm(rt);
      }
    }
  }

  /**
   * Re-resolve aliases named in deployments, and `latest` of models served without a deployment
   * or version; warm the versions they moved to (e.g. one a round just committed).
   */
  async refreshAliases(): Promise<void> {
    for (const model of this.servedLatest) {
      try {
        const v = await this.resolveRef(model, 'latest', true);
        if (!this.cache.peek(model, v)) await this.cache.get(model, v);
      } catch {
        this.servedLatest.delete(model);
      }
    }
    for (const rt of this.runtimes.values()) {
      for (const t of rt.targets) {
        if (/^[0-9]+$/.test(t.ref)) continue;
        try {
          const v = await this.resolveRef(rt.record.model, t.ref, true);
          if (!this.cache.peek(rt.record.model, v, t.variant)) await this.load(rt.record.model, t, rt);
        } catch (err) {
          this.deps.logger.warn({ err, deployment: rt.record.name, target: t.key }, 'serving: alias refresh failed');
        }
      }
    }
  }

  // ---- inference ----

  async infer(req: InferRequest): Promise<InferResult> {
    const t0 = performance.now();
    const rt = this.runtime(req.endpoint);
    const model = rt ? rt.record.model : req.endpoint;
    let target: Pick<Target, 'key' | 'ref' | 'variant'>;
    let routed = false;
    if (req.ref !== undefined || !rt) {
      const variant = (req.variant ?? 'float32') as WeightsVariant;
      const ref = req.ref ?? 'latest';
      target = { key: variant === 'float32' ? ref : `${ref}#${variant}`, ref, variant };
    } else {
      target = rt.targets[rt.choose(req.routingKey)];
      routed = true;
    }
    let stats: TargetStats | undefined;
    if (rt) {
      stats = rt.perTarget.get(target.key);
      if (!stats) rt.perTarget.set(target.key, (stats = new TargetStats()));
    }
    let served: ServedModel | null = null;
    try {
      served = this.loadedNow(model, target, rt) ?? (await this.load(model, target, rt));
      if (!rt && req.ref === undefined) this.servedLatest.add(model);
      const input = req.parse(served.io, this.opts.maxRowsPerRequest);
      // A version unloaded (LRU) between lookup and submit is loaded again, once.
      if (served.batcher.isClosed) served = await this.load(model, target, rt);
      const res = await served.batcher.submit(input.data, input.rows);
      const totalMs = performance.now() - t0;
      const version = served.record.version;
      served.observe(res.queueMs, res.computeMs, totalMs);
      if (rt && stats) {
        rt.observe(res.queueMs, res.computeMs, totalMs);
        stats.served(version, res.queueMs, res.computeMs, totalMs);
        if (routed && rt.bandit) this.ledger.remember(rt.record.name, req.requestId, target.key, version);
        const shadow = routed ? rt.shadowFor(req.requestId) : null;
        if (shadow) this.mirror(rt, shadow, input, res.output, totalMs, served.io.outWidth);
      }
      this.payloads.offer(req.requestId, () => {
        const io = served!.io;
        const rows = Math.min(input.rows, this.opts.payloadMaxRows);
        return {
          model,
          version,
          requestId: req.requestId,
          ...(rt ? { deployment: rt.record.name } : {}),
          ...(served!.variant !== 'float32' ? { variant: served!.variant } : {}),
          at: Date.now(),
          // Several inputs or outputs are logged as packed rows (model-io.ts): [rows, packed width].
          input: { shape: io.inputs.length === 1 ? [rows, ...io.inputShape] : [rows, io.rowWidth], data: Array.from(input.data.subarray(0, rows * io.rowWidth)) },
          output: { shape: io.outputs.length === 1 ? [rows, ...io.outputShape] : [rows, io.outWidth], data: Array.from(res.output.subarray(0, rows * io.outWidth)) },
          latencyMs: r3(totalMs),
          ...(rows < input.rows ? { truncatedFrom: input.rows } : {}),
        };
      });
      return {
        model,
        version,
        variant: served.variant,
        ...(rt ? { deployment: rt.record.name } : {}),
        requestId: req.requestId,
        output: res.output,
        rows: input.rows,
        io: served.io,
        queueMs: res.queueMs,
        computeMs: res.computeMs,
        totalMs,
      };
    } catch (err) {
      if (served) served.errors++;
      rt?.error(codeOf(err), target.key);
      throw err;
    }
  }

  private mirror(rt: DeploymentRuntime, shadow: Target, input: ParsedInput, primary: Float32Array, primaryMs: number, width: number): void {
    rt.shadow.mirrored++;
    const t0 = performance.now();
    void (async () => {
      const served = await this.load(rt.record.model, shadow, rt);
      if (served.io.rowWidth * input.rows !== input.data.length) throw new AppError('FL_ERR_SERVING_BAD_INPUT', { why: 'shadow input shape differs' });
      const res = await served.batcher.submit(input.data, input.rows);
      const ms = performance.now() - t0;
      served.observe(res.queueMs, res.computeMs, ms);
      rt.perTarget.get(shadow.key)?.served(served.record.version, res.queueMs, res.computeMs, ms);
      rt.shadow.compare(primary, res.output, width, primaryMs, ms);
    })().catch(() => {
      rt.shadow.failed++;
    });
  }

  // ---- bandit feedback ----

  /** Credit `reward` in [0, 1] to the target (and version) that served `requestId`; once per request. */
  async feedback(name: string, requestId: string, reward: number): Promise<{ target: string; version: number }> {
    const rt = this.requireRuntime(name);
    if (!rt.bandit) throw new AppError('FL_ERR_DEPLOYMENT_INVALID', { deployment: name, why: 'feedback needs a bandit deployment', mode: rt.record.routing.mode });
    const served = this.ledger.take(name, requestId);
    const arm = served ? rt.targets.findIndex((t) => t.key === served.key) : -1;
    if (!served || arm < 0) throw new AppError('FL_ERR_DEPLOYMENT_UNKNOWN_REQUEST', { deployment: name, requestId });
    rt.bandit.reward(arm, reward);
    rt.dirty = true;
    return { target: served.key, version: served.version };
  }

  private async persistBandits(): Promise<void> {
    for (const rt of this.runtimes.values()) {
      if (!rt.dirty) continue;
      rt.dirty = false;
      try {
        rt.record = await this.deps.store.updateDeployment(rt.record.name, { state: rt.state() });
      } catch (err) {
        this.deps.logger.warn({ err, deployment: rt.record.name }, 'serving: could not save bandit state');
      }
    }
  }

  // ---- deployments ----

  private requireRuntime(name: string): DeploymentRuntime {
    const rt = this.runtimes.get(name);
    if (!rt) throw new AppError('FL_ERR_DEPLOYMENT_NOT_FOUND', { deployment: name });
    return rt;
  }

  /** Check a configuration against the registry and load (warm) every target. */
  private async validate(d: DeploymentInput): Promise<void> {
    const invalid = (why: string, extra: Record<string, unknown> = {}) => new AppError('FL_ERR_DEPLOYMENT_INVALID', { deployment: d.name, why, ...extra });
    if (!DEPLOYMENT_NAME.test(d.name)) throw invalid('bad name', { rule: DEPLOYMENT_NAME.source });
    await this.deps.registry.getModel(d.model);
    if (d.name !== d.model && (await this.deps.store.getModel(d.name))) throw invalid('a deployment may not hide another model of the same name', { model: d.name });
    const targets = targetsOf(d.routing);
    if (new Set(targets.map((t) => t.key)).size !== targets.length) throw invalid('targets must be distinct');
    if (d.routing.mode === 'bandit' && targets.length < 2) throw invalid('a bandit needs at least two targets');
    for (const t of targets) {
      try {
        const version = await this.resolveRef(d.model, t.ref, true);
        await this.cache.get(d.model, version, t.variant);
      } catch (err) {
        const wire = err instanceof AppError ? err.toWire() : { code: 'FL_ERR_INTERNAL' };
        throw invalid('a target cannot be served', { target: t.key, cause: wire });
      }
    }
  }

  async createDeployment(input: DeploymentInput): Promise<DeploymentRecord> {
    if (this.runtimes.has(input.name) || (await this.deps.store.getDeployment(input.name))) {
      throw new AppError('FL_ERR_DEPLOYMENT_EXISTS', { deployment: input.name });
    }
    await this.validate(input);
    const now = Date.now();
    const record: DeploymentRecord = { ...input, createdAt: now, updatedAt: now };
    for (const k of Object.keys(record) as (keyof DeploymentRecord)[]) if (record[k] === undefined) delete record[k];
    await this.deps.store.createDeployment(record);
    const rt = new DeploymentRuntime(record, this.rng);
    this.runtimes.set(record.name, rt);
    await this.warm(rt);
    return record;
  }

  async updateDeployment(name: string, input: Omit<DeploymentInput, 'name'>): Promise<DeploymentRecord> {
    const rt = this.requireRuntime(name);
    await this.validate({ ...input, name });
    const record = await this.deps.store.updateDeployment(name, {
      model: input.model,
      routing: input.routing,
      batching: input.batching,
      feedback: input.feedback,
      description: input.description,
      // Arms of targets that stay keep what they learned (DeploymentRuntime.configure matches them by key).
      state: input.routing.mode === 'bandit' && rt.bandit ? { arms: rt.bandit.snapshot() } : undefined,
    });
    rt.configure(record);
    await this.warm(rt);
    return record;
  }

  async deleteDeployment(name: string): Promise<void> {
    this.requireRuntime(name);
    await this.deps.store.deleteDeployment(name);
    this.runtimes.delete(name);
  }

  getDeployment(name: string): DeploymentRecord {
    return this.requireRuntime(name).record;
  }

  listDeployments(): DeploymentRecord[] {
    return [...this.runtimes.values()].map((rt) => rt.record).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  hasDeployment(name: string): boolean {
    return this.runtimes.has(name);
  }

  /**
   * Targets a request to `endpoint` may be served by, resolved to versions, with load state: as
   * infer picks them, `pick.ref` and `pick.variant` name one target (a deployment's model's, or
   * the model's `latest`) unless the endpoint is a deployment asked without a ref (its routing's
   * targets).
   */
  async endpointVersions(endpoint: string, pick: { ref?: string; variant?: WeightsVariant } = {}): Promise<Array<{ model: string; target: string; version: number; variant: WeightsVariant; loaded: boolean; loading: boolean }>> {
    const rt = this.runtimes.get(endpoint);
    const model = rt ? rt.record.model : endpoint;
    const one = (ref: string, variant: WeightsVariant) => [{ key: variant === 'float32' ? ref : `${ref}#${variant}`, ref, variant }];
    const targets = rt && pick.ref === undefined ? rt.targets : one(pick.ref ?? 'latest', pick.variant ?? 'float32');
    const out = [];
    for (const t of targets) {
      const version = await this.resolveRef(model, t.ref);
      out.push({ model, target: t.key, version, variant: t.variant, loaded: !!this.cache.peek(model, version, t.variant), loading: this.cache.isLoading(model, version, t.variant) });
    }
    return out;
  }

  /** Version numbers of a model that are not archived, newest first (at most 100). */
  async versionsOf(model: string): Promise<number[]> {
    return (await this.deps.registry.listVersions(model, { limit: 100 })).map((v) => v.version);
  }

  /** Start loading (no wait). */
  prefetch(model: string, version: number, variant: string = 'float32'): void {
    this.cache.get(model, version, variant).catch(() => undefined);
  }

  // ---- statistics ----

  async deploymentStats(name: string) {
    const rt = this.requireRuntime(name);
    return deploymentStats(rt, {
      resolve: (model, ref) => this.resolveRef(model, ref),
      coldStartMs: (model, version, variant) => this.cache.peek(model, version, variant as WeightsVariant)?.coldStartMs ?? null,
      awaitingFeedback: this.ledger.pending(name),
    });
  }

  servingStats(): { backend: string; ready: boolean; totalBytes: number; maxBytes: number; models: ServedModelInfo[]; payloadLog: object } {
    return {
      backend: this.backendName,
      ready: this.isReady,
      totalBytes: this.cache.totalBytes,
      maxBytes: this.opts.maxModelBytes,
      models: this.cache.list().map((m) => m.info()),
      payloadLog: { rate: this.opts.payloadSampleRate, capPerModel: this.opts.payloadCapPerModel, written: this.payloads.written, dropped: this.payloads.dropped },
    };
  }

  // ---- drift ----

  /** Record the drift reference of a version (e.g. by the publisher, from its training data). */
  putReference(model: string, version: number, s: FeatureStats, source = 'publish'): Promise<void> {
    return this.references.put(model, version, s, source);
  }

  /** Record a window of a version's logged payloads as its drift reference (an operator's confirmation). */
  async confirmReference(model: string, version: number, window: ReferenceWindow): Promise<ConfirmedReference> {
    await this.payloads.flush();
    return this.references.confirmWindow(model, version, window);
  }

  /** Drift of a version's logged inputs (default: `latest`) against its reference. */
  async drift(model: string, ref?: string, threshold = 0.5): Promise<DriftReport> {
    await this.payloads.flush();
    return this.references.drift(model, await this.resolveRef(model, ref ?? 'latest'), threshold);
  }
}
