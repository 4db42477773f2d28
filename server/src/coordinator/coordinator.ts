import { tfjsSpec } from '../registry/model-format.js';
import { checkSecAggPlan } from './secagg/secagg-plan.js';
import { EventEmitter } from 'node:events';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ModelSpecSchema, TaskPlanSchema, lossMismatch, modeFieldConflict, type ModelSpec, type TaskPlan, type TaskPlanInput } from '@flotilla/protocol';
import { assertManifest, manifestLength } from '@flotilla/protocol';
import { buildPreset, respec, specOf, type PresetName } from '@flotilla/model';
import { AppError } from '../errors.js';
import { createStrategy } from '../fl/strategies/index.js';
import { ScreeningOptionsSchema } from '../fl/screening.js';
import type { ClientRecord, TaskRecord } from '../store/records.js';
import type { CentralEvaluator, CoordinatorDeps, CoordinatorLogger, CoordinatorStats } from './deps.js';
import { SessionTable } from './sessions.js';
import { LocalDeviceChannel, type DeviceChannel } from './device-channel.js';
import type { RoundCluster } from './round-cluster.js';
import { ClientActivity } from './client-activity.js';
import { runnerFor, prepareResume, type Runner } from './async/runner-for.js';
import { checkAsyncStrategy } from '../fl/async/async-support.js';
import type { Registry } from '../registry/registry.js';
import type { Store } from '../store/store.js';

export interface CreateTaskInput {
  id: string;
  /** Registered model to publish to; defaults to the task id. */
  modelName?: string;
  preset?: PresetName;
  spec?: ModelSpec;
  /** Initial weights for `spec` (required with spec). */
  weights?: Float32Array;
  /** Start from a registry version (fine-tune): its topology and weights; the task's first version records it as parent. */
  fromVersion?: { model: string; ref: string | number };
  plan: TaskPlanInput;
  start?: boolean;
}

/** Resolves with the id of the token used (null or void: a token without an id, such as the bootstrap one). */
export type DeviceAuthenticator = (token: string, taskId: string) => Promise<{ tokenId: string | null } | void>;

export interface CoordinatorOptions {
  store: Store;
  registry: Registry;
  logger: CoordinatorLogger;
  evaluator?: CentralEvaluator;
  onPublished?: CoordinatorDeps['onPublished'];
  /** A disconnected selected device counts as dropped after this long without a new hello (default 3 s). */
  reconnectGraceMs?: number;
  /** Bytes of uploads in flight at once (default 32 MiB); see UploadGate. */
  uploadBudgetBytes?: number;
  /** Offer devices the HTTP report upload channel (default true; docs/protocol.md, "Report upload"). */
  reportUploads?: boolean;
  /** Throws AppError (FL_ERR_AUTH_*) unless the token may join the task. */
  authenticateDevice: DeviceAuthenticator;
  /** Largest `maxUpdateBytes` a plan may set (the socket transport cap is derived from it); default 64 MiB. */
  maxUpdateBytes?: number;
  /** Device ids one credential may enrol (default 10,000); a new id past it gets FL_ERR_CLIENT_CAP_REACHED. */
  maxDevicesPerToken?: number;
  /** Client records of devices not seen for maxAgeMs are deleted at start-up and every sweepIntervalMs (default 90 days, hourly); false keeps them. */
  clientRetention?: ClientRetention | false;
}

export interface ClientRetention {
  maxAgeMs: number;
  sweepIntervalMs?: number;
}

export const DEFAULT_MAX_DEVICES_PER_TOKEN = 10_000;
export const DEFAULT_CLIENT_RETENTION: Required<ClientRetention> = { maxAgeMs: 90 * 86_400_000, sweepIntervalMs: 3_600_000 };

/** Default of CoordinatorOptions.maxUpdateBytes: the plan schema's default, so default plans are accepted. */
export const DEFAULT_MAX_UPDATE_BYTES = 64 * 1024 * 1024;

/**
 * The parts of a plan the protocol schema leaves to the server: strategy params and screening
 * options. Throws FL_ERR_TASK_INVALID_SPEC; called at every boundary that accepts a plan.
 */
export function checkPlan(plan: TaskPlan): void {
  checkAsyncStrategy(plan);
  createStrategy(plan);
  checkSecAggPlan(plan);
  if (plan.screening !== undefined) {
    const s = ScreeningOptionsSchema.safeParse(plan.screening);
    if (!s.success) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { screening: s.error.issues.slice(0, 5) });
  }
}

/** A raw plan (or patch) mixing async-only and sync-only fields: FL_ERR_TASK_INVALID_SPEC naming the field (docs/async.md). */
export function checkModeFields(raw: unknown, mode: unknown): void {
  const c = raw && typeof raw === 'object' ? modeFieldConflict(raw as Record<string, unknown>, mode) : null;
  if (c) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { issues: [{ path: c.field, message: c.message }] });
}

/**
 * Cluster mode aggregates hierarchically (docs/cluster.md): only strategies whose aggregate is a
 * mergeable sum run there; median, trimmed mean and Krum need every raw update in one place, and
 * norm screening keeps a history in report order, so both are refused with FL_ERR_CLUSTER_UNSUPPORTED.
 */
export function checkClusterPlan(plan: TaskPlan): void {
  const agg = createStrategy(plan).beginFit(1, 1);
  if (typeof agg.exportPartial !== 'function' || typeof agg.mergePartial !== 'function') {
    throw new AppError('FL_ERR_CLUSTER_UNSUPPORTED', { strategy: plan.strategy.name, why: 'its aggregate is not a weighted sum that nodes can fold separately' });
  }
  if (plan.screening !== undefined) throw new AppError('FL_ERR_CLUSTER_UNSUPPORTED', { option: 'screening', why: 'norm screening history is kept in report order on one node' });
  // SCAFFOLD's control-variate sums are not part of a partial (exportPartial carries the delta sum only).
  if (agg.requiresControl) throw new AppError('FL_ERR_CLUSTER_UNSUPPORTED', { strategy: plan.strategy.name, why: 'control-variate sums are not carried in node partials' });
  if (plan.mode === 'async') throw new AppError('FL_ERR_CLUSTER_UNSUPPORTED', { option: 'mode', why: 'asynchronous tasks run on one coordinator (docs/async.md)' });
  if (plan.secureAggregation) throw new AppError('FL_ERR_CLUSTER_UNSUPPORTED', { option: 'secureAggregation', why: 'the masked sum and the unmasking phase run on one coordinator (docs/secure-aggregation.md)' });
}

/** The plan's loss and metrics against the model's outputs (FL_ERR_TASK_INVALID_SPEC). */
export function checkLoss(plan: TaskPlan, spec: ModelSpec): void {
  const why = lossMismatch(plan, spec.numClasses);
  if (why) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { loss: plan.loss, why });
}

/** Constant-time check of a presented token against the expected one. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * The coordinator: the tasks and their runners, the device sessions, and the events the rest of
 * the server (HTTP, metrics, the simulator in-process) listens to. Socket traffic arrives through
 * the gateway; admin actions through the methods below.
 */
export class Coordinator {
  readonly events = new EventEmitter();
  readonly sessions = new SessionTable();
  readonly stats: CoordinatorStats = { roundsStarted: 0, roundsCommitted: 0, roundsFailed: 0, reportsAccepted: 0, reportsUploaded: 0, rejected: {} };
  private readonly runners = new Map<string, Runner>();
  /** Per task, the tail of its serial calls (`serially`). */
  private readonly taskChains = new Map<string, Promise<unknown>>();
  /** Device records, written behind in batches. */
  readonly clients: ClientActivity;
  private readonly deps: CoordinatorDeps;
  private sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly opts: CoordinatorOptions) {
    this.events.setMaxListeners(100);
    this.clients = new ClientActivity(opts.store, opts.logger);
    this.deps = {
      store: opts.store,
      registry: opts.registry,
      devices: new LocalDeviceChannel(this.sessions),
      events: this.events,
      evaluator: opts.evaluator,
      onPublished: opts.onPublished,
      logger: opts.logger,
      stats: this.stats,
      uploadBudgetBytes: opts.uploadBudgetBytes ?? 32 * 1024 * 1024,
      reconnectGraceMs: opts.reconnectGraceMs ?? 3000,
      reportUploads: opts.reportUploads ?? true,
    };
  }

  async authenticateDevice(token: string, taskId: string): Promise<{ tokenId: string | null }> {
    const r = await this.opts.authenticateDevice(token, taskId);
    return { tokenId: r?.tokenId ?? null };
  }

  /**
   * Admit a device id presented with the credential `tokenId` for `taskId` at handshake. The id
   * is bound to the credential that first used it: another credential gets FL_ERR_CLIENT_BOUND
   * (whether or not the device is connected) and the live session stays; a revoked id gets
   * FL_ERR_CLIENT_REVOKED; a new id past the credential's maxDevicesPerToken gets
   * FL_ERR_CLIENT_CAP_REACHED and nothing is recorded. On success the client record is bound and
   * moved to `taskId`.
   */
  async admitDevice(deviceId: string, taskId: string, tokenId: string | null): Promise<void> {
    const live = this.sessions.get(deviceId);
    if (live && live.socket.connected && live.tokenId !== tokenId) throw new AppError('FL_ERR_CLIENT_BOUND', { client: deviceId });
    const cap = this.opts.maxDevicesPerToken ?? DEFAULT_MAX_DEVICES_PER_TOKEN;
    if (!(await this.clients.enrol(deviceId, taskId, tokenId, cap))) throw new AppError('FL_ERR_CLIENT_CAP_REACHED', { limit: cap });
    const verdict = await this.clients.bind(deviceId, taskId, tokenId);
    if (verdict === 'revoked') throw new AppError('FL_ERR_CLIENT_REVOKED', { client: deviceId });
    if (verdict === 'bound') throw new AppError('FL_ERR_CLIENT_BOUND', { client: deviceId });
  }

  /**
   * Delete the records of devices not seen for the retention period (revoked and connected ones
   * stay); emits 'clients:swept' with the ids deleted. Runs at start-up and on a timer (see init).
   */
  async sweepClients(): Promise<string[]> {
    const r = this.opts.clientRetention;
    if (r === false) return [];
    const gone = await this.clients.sweep(Date.now() - (r?.maxAgeMs ?? DEFAULT_CLIENT_RETENTION.maxAgeMs), (id) => this.sessions.get(id)?.socket.connected === true);
    if (gone.length > 0) this.opts.logger.info({ clients: gone.length }, 'client records of long-gone devices deleted');
    this.events.emit('clients:swept', gone);
    return gone;
  }

  /** Mark a device revoked and disconnect its session; later hellos with its id are refused. */
  async revokeClient(deviceId: string): Promise<ClientRecord> {
    const next = await this.clients.revoke(deviceId);
    if (!next) throw new AppError('FL_ERR_CLIENT_NOT_FOUND', { client: deviceId });
    this.sessions.get(deviceId)?.socket.disconnect(true);
    return next;
  }

  /** Disconnect every session opened with the token `tokenId` (after it was revoked). Returns how many. */
  disconnectToken(tokenId: string): number {
    let n = 0;
    for (const s of [...this.sessions.all()]) {
      if (s.tokenId === tokenId) {
        s.socket.disconnect(true);
        n++;
      }
    }
    return n;
  }

  /**
   * Change a task's plan: `patch` is merged over the current plan (a null value removes an
   * optional key) and the result validated with TaskPlanSchema. The round in flight keeps the plan
   * it started with; the new plan applies from the next round. The strategy and the seed are fixed
   * at creation (the strategy's server state and the selection stream depend on them).
   */
  async updatePlan(id: string, patch: Record<string, unknown>): Promise<TaskRecord> {
    const r = this.getRunner(id);
    if (['stopped', 'done', 'failed'].includes(r.record.state)) throw new AppError('FL_ERR_TASK_INVALID_STATE', { task: id, state: r.record.state });
    if ('mode' in patch && (patch.mode ?? undefined) !== r.record.plan.mode) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { issues: [{ path: 'mode', message: 'mode is fixed at creation' }] });
    checkModeFields(patch, r.record.plan.mode);
    const merged: Record<string, unknown> = { ...r.record.plan };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    const parsed = TaskPlanSchema.safeParse(merged);
    if (!parsed.success) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { issues: parsed.error.issues.slice(0, 10) });
    const plan = parsed.data;
    if (
      JSON.stringify(plan.strategy) !== JSON.stringify(r.record.plan.strategy) ||
      plan.seed !== r.record.plan.seed ||
      JSON.stringify(plan.screening) !== JSON.stringify(r.record.plan.screening) ||
      JSON.stringify(plan.trainableLayers) !== JSON.stringify(r.record.plan.trainableLayers)
    ) {
      throw new AppError('FL_ERR_TASK_INVALID_SPEC', { why: 'strategy, screening, seed and trainableLayers cannot change after a task is created' });
    }
    checkPlan(plan);
    this.checkUpdateCeiling(plan);
    checkLoss(plan, r.record.spec);
    await r.updatePlan(plan);
    return r.record;
  }

  /**
   * Load every task from the store. Running tasks resume from their last committed version; a
   * round that was in flight when the process died is marked failed and a new one starts.
   */
  async init(): Promise<void> {
    // In a cluster a starting node must not touch the rounds of a live leader: the node that
    // takes a task's lease restores it (see takeOver).
    for (const task of await this.opts.store.listTasks()) await this.load(task.id, this.deps.cluster ? 'keep' : 'fail-in-flight');
    const retention = this.opts.clientRetention;
    if (retention !== false) {
      await this.sweepClients();
      const every = retention?.sweepIntervalMs ?? DEFAULT_CLIENT_RETENTION.sweepIntervalMs;
      this.sweeper = setInterval(() => {
        this.sweepClients().catch((err) => this.opts.logger.warn({ err }, 'client retention sweep failed; will retry'));
      }, every);
      this.sweeper.unref();
    }
  }

  /**
   * (Re)build a task's runner from the store: its record and the weights of its current version.
   * 'fail-in-flight' marks a round that was in flight when its driver died as failed, so that a
   * new one starts from the last committed version (restart, or a cluster node taking over).
   */
  load(taskId: string, inFlight: 'keep' | 'fail-in-flight', reason = 'coordinator restarted mid-round'): Promise<Runner | undefined> {
    return this.serially(taskId, () => this.loadNow(taskId, inFlight, reason));
  }

  /**
   * Runs `fn` once every earlier serial call for the same task has settled. Loading a task's
   * runner and changing its state (start, pause, stop) never interleave: a start that landed
   * while a load was between its read of the task and its new runner went to the runner being
   * replaced, and the new one kept the state read before it.
   */
  private serially<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.taskChains.get(taskId) ?? Promise.resolve()).then(fn);
    this.taskChains.set(taskId, next.catch(() => undefined));
    return next;
  }

  private async loadNow(taskId: string, inFlight: 'keep' | 'fail-in-flight', reason: string): Promise<Runner | undefined> {
    let task = await this.opts.store.getTask(taskId);
    if (!task) return undefined;
    const weights = await this.loadWeights(task.modelName, task.currentVersion);
    if (inFlight === 'fail-in-flight') {
      for (const r of await this.opts.store.listRounds(task.id, { limit: 1 })) {
        if (r.state !== 'done' && r.state !== 'failed') {
          await this.opts.store.saveRound({ ...r, state: 'failed', failureReason: reason, endedAt: Date.now() });
        }
      }
      task = await prepareResume(this.deps, task);
    }
    this.runners.get(task.id)?.dispose();
    const runner = runnerFor(this.deps, task, weights);
    this.runners.set(task.id, runner);
    return runner;
  }

  /** Run as one node of a cluster: runners reach devices through `devices` and ask `cluster` (call before init). */
  useCluster(cluster: RoundCluster, devices: DeviceChannel): void {
    this.deps.cluster = cluster;
    this.deps.devices = devices;
  }

  get cluster(): RoundCluster | undefined {
    return this.deps.cluster;
  }

  /** The weights of a task's current version, from the registry. */
  weightsOf(task: TaskRecord): Promise<Float32Array> {
    return this.loadWeights(task.modelName, task.currentVersion);
  }

  /** The largest update a plan may ask devices for (bytes); socket messages are capped from it. */
  get maxUpdateBytes(): number {
    return this.opts.maxUpdateBytes ?? DEFAULT_MAX_UPDATE_BYTES;
  }

  private checkUpdateCeiling(plan: TaskPlan): void {
    if (plan.maxUpdateBytes > this.maxUpdateBytes) {
      throw new AppError('FL_ERR_TASK_INVALID_SPEC', { why: 'plan.maxUpdateBytes exceeds the server limit (maxUpdateBytes)', limit: this.maxUpdateBytes, got: plan.maxUpdateBytes });
    }
  }

  private async loadWeights(model: string, version: number): Promise<Float32Array> {
    return this.opts.registry.readWeights(await this.opts.registry.getVersion(model, version));
  }

  async createTask(input: CreateTaskInput): Promise<TaskRecord> {
    checkModeFields(input.plan, (input.plan as { mode?: unknown } | undefined)?.mode);
    const parsedPlan = TaskPlanSchema.safeParse(input.plan);
    if (!parsedPlan.success) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { issues: parsedPlan.error.issues.slice(0, 10) });
    const plan = parsedPlan.data;
    checkPlan(plan);
    this.checkUpdateCeiling(plan);
    if (this.deps.cluster) checkClusterPlan(plan);
    if (this.runners.has(input.id) || (await this.opts.store.getTask(input.id))) throw new AppError('FL_ERR_TASK_EXISTS', { task: input.id });
    const sources = [input.preset, input.spec, input.fromVersion].filter((x) => x !== undefined).length;
    if (sources !== 1 || (input.spec === undefined) !== (input.weights === undefined)) {
      throw new AppError('FL_ERR_TASK_INVALID_SPEC', { why: 'give one of: a preset, a spec with initial weights, or a registry version to start from' });
    }
    let spec: ModelSpec;
    let weights: Float32Array;
    let parent: { model: string; version: number } | undefined;
    if (input.preset) {
      const built = buildPreset(input.preset);
      ({ spec, weights } = specOf(built.model, built.numClasses));
      built.model.dispose();
      if (plan.trainableLayers) spec = await respec(spec, plan.trainableLayers);
    } else if (input.fromVersion) {
      const { record } = await this.opts.registry.resolve(input.fromVersion.model, input.fromVersion.ref);
      spec = await respec(tfjsSpec(record, 'fine-tuning'), plan.trainableLayers);
      weights = await this.opts.registry.readWeights(record);
      parent = { model: record.model, version: record.version };
    } else if (input.spec && input.weights) {
      const ps = ModelSpecSchema.safeParse(input.spec);
      if (!ps.success) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { issues: ps.error.issues.slice(0, 10) });
      spec = ps.data;
      assertManifest(spec.manifest);
      weights = input.weights;
      if (weights.length !== manifestLength(spec.manifest)) {
        throw new AppError('FL_ERR_TASK_INVALID_SPEC', { why: 'weights length does not match manifest', expected: manifestLength(spec.manifest), got: weights.length });
      }
      spec = await respec(spec, plan.trainableLayers);
    } else {
      throw new AppError('FL_ERR_TASK_INVALID_SPEC', { why: 'give a preset, or a spec with initial weights' });
    }
    checkLoss(plan, spec);
    const modelName = input.modelName ?? input.id;
    const existing = await this.opts.store.listVersions(modelName, { limit: 1, includeArchived: true });
    const version = (existing[0]?.version ?? 0) + 1;
    const now = Date.now();
    const task: TaskRecord = { id: input.id, modelName, spec, plan, state: 'created', currentVersion: version, nextRound: 1, createdAt: now, updatedAt: now };
    const v = await this.opts.registry.prepareVersion({
      model: modelName,
      version,
      createdAt: now,
      spec,
      weights,
      taskId: input.id,
      tags: ['initial'],
      description: parent ? `initial weights of task ${input.id}, from ${parent.model} version ${parent.version}` : `initial weights of task ${input.id}`,
      ...(parent ? { parentVersion: parent.version, parentModel: parent.model } : existing[0] ? { parentVersion: existing[0].version } : {}),
    });
    await this.opts.store.createTask(task, v);
    const runner = runnerFor(this.deps, task, weights);
    this.runners.set(task.id, runner);
    this.events.emit('task', runner.record);
    await this.opts.onPublished?.(v, weights);
    if (input.start) await this.startTask(task.id);
    return runner.record;
  }

  getRunner(id: string): Runner {
    const r = this.runners.get(id);
    if (!r) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: id });
    return r;
  }

  maybeRunner(id: string): Runner | undefined {
    return this.runners.get(id);
  }

  listRunners(): Runner[] {
    return [...this.runners.values()];
  }

  startTask(id: string): Promise<TaskRecord> {
    return this.serially(id, async () => {
      const r = this.getRunner(id);
      if (!['created', 'paused'].includes(r.record.state)) throw new AppError('FL_ERR_TASK_INVALID_STATE', { task: id, state: r.record.state });
      await r.setState('running');
      return r.record;
    });
  }

  pauseTask(id: string): Promise<TaskRecord> {
    return this.serially(id, async () => {
      const r = this.getRunner(id);
      if (r.record.state !== 'running') throw new AppError('FL_ERR_TASK_INVALID_STATE', { task: id, state: r.record.state });
      await r.halt('paused', 'paused by operator');
      return r.record;
    });
  }

  stopTask(id: string): Promise<TaskRecord> {
    return this.serially(id, async () => {
      const r = this.getRunner(id);
      if (['stopped', 'done', 'failed'].includes(r.record.state)) throw new AppError('FL_ERR_TASK_INVALID_STATE', { task: id, state: r.record.state });
      await r.halt('stopped', 'stopped by operator');
      return r.record;
    });
  }

  async countReport(deviceId: string, accepted: boolean): Promise<void> {
    try {
      await this.clients.countReport(deviceId, accepted);
    } catch (err) {
      this.opts.logger.warn({ err }, 'client stats update failed');
    }
  }

  /** Stop timers and flush device bookkeeping; task state in the store is left as is, for resume. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const r of this.runners.values()) r.dispose();
    await this.clients.close();
  }
}
