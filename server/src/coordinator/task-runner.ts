import { clientPlanOf, effectiveMinAvailable, effectiveMinReports, type EvalReport, type FitReport, type TaskPlan } from '@flotilla/protocol';
import { gatherTrainable, scatterTrainable, trainableLength } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import { createRng, type Rng } from '../fl/rng.js';
import { closeAtDeadline } from '../fl/round-state.js';
import type { AggregatorPartial, Strategy } from '../fl/strategy.js';
import { createStrategy } from '../fl/strategies/index.js';
import type { RoundRecord, TaskRecord } from '../store/records.js';
import { ActiveRound } from './active-round.js';
import { FederatedEvaluation } from './federated-evaluation.js';
import { NormScreen, ScreeningOptionsSchema } from '../fl/screening.js';
import type { CoordinatorDeps } from './deps.js';
import { artifactPaths } from './artifact-paths.js';
import { firstOutOfRange, rangeHeadroom } from '../fl/update-checks.js';
import { beginSecAgg, foldSecure, takeMasked } from './secagg/secagg-hook.js';
import type { SecAggMasked, SecAggUp } from '@flotilla/protocol';
import { encodeServerControl } from './control-variates.js';

/**
 * Runs one task's rounds (docs/architecture.md, "Life of a round"). Owns the task's global weights in memory
 * (O(model)) and at most one round in flight. Strategies, screening and reports see only the
 * trainable vector (protocol/src/tensor/trainable.ts); commits lay it over the full weights, so
 * frozen weights stay bit-identical across versions. All state that must survive a crash goes
 * through the store before anyone is told: the round's number is reserved before instructions go
 * out, and a version is visible only after `commitRound` succeeded.
 */
/** The task's strategy as of its last commit: built from the plan, with the stored state imported. */
export function committedStrategy(task: TaskRecord): Strategy {
  const s = createStrategy(task.plan);
  if (task.strategyState !== undefined) s.importState?.(task.strategyState);
  return s;
}

export class TaskRunner {
  private active: ActiveRound | null = null;
  private busy = false; // aggregating/committing, or starting a round
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly evaluation: FederatedEvaluation;
  private strategy: Strategy;
  /** Built from a plan update; replaces `strategy` (carrying its state) when the next round starts. */
  private nextStrategy: Strategy | null = null;
  /** Norm screening of updates, when the plan asks for it (history kept across rounds and saved with each commit). */
  private readonly screen: NormScreen | null;
  private readonly rng: Rng;
  /** Cluster: `active` is this node's shard of another node's round (see follow). */
  private following = false;
  /** Cluster: the fencing token held when the round in flight started. */
  private roundFence: number | undefined;

  constructor(
    private readonly deps: CoordinatorDeps,
    private task: TaskRecord,
    private weights: Float32Array,
  ) {
    this.strategy = committedStrategy(task);
    this.screen = task.plan.screening ? new NormScreen(ScreeningOptionsSchema.parse(task.plan.screening)) : null;
    if (this.screen && task.screeningState !== undefined) this.screen.importState(task.screeningState);
    this.rng = createRng(task.plan.seed ?? Math.floor(Math.random() * 2 ** 31));
    this.evaluation = new FederatedEvaluation(deps, () => this.task, () => this.strategy, this.rng);
  }

  get id(): string {
    return this.task.id;
  }

  get record(): TaskRecord {
    return this.task;
  }

  get currentRound(): ActiveRound | null {
    return this.active;
  }

  get globalWeights(): Float32Array {
    return this.weights;
  }

  /** Floats in the trainable vector: what reports carry and strategies aggregate. */
  get trainableLength(): number {
    return trainableLength(this.task.spec.manifest);
  }

  async setState(state: TaskRecord['state'], reason?: string): Promise<void> {
    this.task = await this.deps.store.updateTask(this.task.id, { state, ...(reason ? { stateReason: reason } : {}) });
    this.deps.events.emit('task', this.task);
    this.deps.devices.broadcast(this.task.id, 'task:state', { taskId: this.task.id, state, ...(reason ? { reason } : {}) });
    if (state === 'running') this.poke();
  }

  /** Cluster: another node changed the task in the store; take its record (plan, state) as is. */
  refresh(task: TaskRecord): void {
    if (JSON.stringify(task.plan) !== JSON.stringify(this.task.plan)) this.nextStrategy = createStrategy(task.plan);
    this.task = { ...task, currentVersion: this.task.currentVersion, nextRound: Math.max(task.nextRound, this.task.nextRound) };
    if (task.state !== 'running' && this.active?.state === 'training' && !this.following) void this.fail(`task ${task.state}`);
    this.poke();
  }

  /** Replace the plan (already validated); the round in flight keeps the plan it started with. */
  async updatePlan(plan: TaskPlan): Promise<void> {
    const next = createStrategy(plan); // the strategy validates its params against the new plan
    this.task = await this.deps.store.updateTask(this.task.id, { plan });
    this.nextStrategy = next;
    this.deps.events.emit('task', this.task);
    this.poke();
  }

  /** Pause/stop: the round in flight (if any) fails; the global model is unchanged. */
  async halt(state: 'paused' | 'stopped' | 'done', reason: string): Promise<void> {
    if (this.active && this.active.state === 'training' && !this.following) await this.fail(reason);
    await this.setState(state, reason);
  }

  /** Start a round if the task is running, none is in flight and enough devices are connected. */
  poke(): void {
    if (this.task.state !== 'running' || this.active || this.busy) return;
    if (this.deps.cluster && !this.deps.cluster.leads(this.task.id)) return;
    const eligible = this.deps.devices.eligible(this.task.id);
    if (eligible.length < effectiveMinAvailable(this.task.plan)) return;
    this.busy = true;
    this.startRound(eligible)
      .catch((err) => this.deps.logger.error({ err, task: this.task.id }, 'round start failed'))
      .finally(() => {
        this.busy = false;
      });
  }

  private async startRound(eligible: string[]): Promise<void> {
    if (this.nextStrategy) {
      const state = this.strategy.exportState?.();
      if (state !== undefined) this.nextStrategy.importState?.(state);
      this.strategy = this.nextStrategy;
      this.nextStrategy = null;
    }
    const plan = this.task.plan;
    const round = this.task.nextRound;
    const selected = this.strategy.configureFit(round, eligible, this.rng);
    const now = Date.now();
    const record: RoundRecord = {
      taskId: this.task.id,
      round,
      state: 'selecting',
      baseVersion: this.task.currentVersion,
      selected,
      reported: [],
      rejected: [],
      dropped: [],
      startedAt: now,
      deadline: now + plan.roundDeadlineMs,
      trainMetrics: {},
      evalMetrics: {},
      centralMetrics: {},
      bytesUp: 0,
      bytesDown: 0,
    };
    // Reserve the round number first: a crash after this never reuses it.
    this.task = await this.deps.store.updateTask(this.task.id, { nextRound: round + 1 });
    const active = this.openRound(record, plan, this.screen);
    active.transition('training');
    await this.deps.store.saveRound(record);
    this.active = active;
    this.roundFence = this.deps.cluster?.fence(this.task.id);
    await this.deps.cluster?.roundOpened(record, plan);
    const paths = artifactPaths(this.task.modelName, this.task.currentVersion);
    const clientPlan = this.strategy.configureClientPlan?.(round, clientPlanOf(plan)) ?? clientPlanOf(plan);
    if (plan.secureAggregation) {
      active.secagg = beginSecAgg(this.deps, this.task.id, active, plan, clientPlan, () => this.rng(), (r, survivors) => {
        foldSecure(active, r, survivors, plan.secureAggregation!);
        void this.aggregate(active);
      }, (reason) => void (this.active === active && this.fail(reason)));
    }
    const control = encodeServerControl(this.strategy, plan, this.trainableLength); // SCAFFOLD's c, the same bytes for every device
    for (const id of selected) {
      const sent = this.deps.devices.send(id, 'fit:instruction', {
        taskId: this.task.id,
        round,
        modelName: this.task.modelName,
        modelVersion: this.task.currentVersion,
        modelUrl: paths.modelJson,
        weightsUrl: paths.weights,
        plan: clientPlan,
        deadline: record.deadline,
        ...(control ? { control } : {}),
      });
      if (!sent) {
        if (active.drop(id, 'gone before instruction')) active.secagg?.gone(id);
        continue;
      }
      record.bytesDown += this.weights.byteLength + (control?.byteLength ?? 0);
    }
    this.deps.stats.roundsStarted++;
    active.timer = setTimeout(() => void this.onDeadline(active), plan.roundDeadlineMs);
    if (active.settled) await this.settle(active);
  }

  /** The in-memory round over `record`: upload slots, the strategy's aggregator, the checks every report passes. */
  private openRound(record: RoundRecord, plan: TaskPlan, screen: NormScreen | null): ActiveRound {
    const trainable = this.trainableLength;
    const updateBytes = 12 + 4 * trainable;
    const slots = Math.max(2, Math.min(64, Math.floor(this.deps.uploadBudgetBytes / updateBytes)));
    const strategy = this.strategy;
    // Out-of-range previews see what the strategy steps: the trainable part of the global weights.
    const base = gatherTrainable(this.weights, this.task.spec.manifest);
    const range = strategy.previewOutOfRange
      ? { first: (d: Float32Array) => strategy.previewOutOfRange!(d, base), headroom: strategy.previewHeadroom?.(base) ?? 0 }
      : { first: (d: Float32Array) => firstOutOfRange(base, d), headroom: rangeHeadroom(base) };
    return new ActiveRound(record, strategy.beginFit(record.round, trainable), trainable, plan, slots, screen, range);
  }

  private async onDeadline(active: ActiveRound): Promise<void> {
    if (this.active !== active || active.state !== 'training' || active.secagg) return; // secure aggregation keeps its own deadlines
    if (closeAtDeadline(active.reported.size, effectiveMinReports(active.plan)) === 'aggregate') await this.aggregate(active);
    else await this.fail(`deadline: ${active.reported.size} of ${effectiveMinReports(active.plan)} required reports`);
  }

  /** Called when every selected device has reported or dropped. */
  private async settle(active: ActiveRound): Promise<void> {
    if (active.reported.size >= effectiveMinReports(active.plan)) await this.aggregate(active);
    else await this.fail(`only ${active.reported.size} reports and every other selected device dropped`);
  }

  /** The round a report or upload request names, or the coded reason it cannot be taken. */
  private roundFor(round: number): ActiveRound {
    const a = this.active;
    // A report for a round that is over is late, whatever the task does now (done, paused...).
    if (round < (a?.round ?? this.task.nextRound)) throw new AppError('FL_ERR_ROUND_LATE_REPORT', { round, current: a?.round ?? null });
    if (this.task.state !== 'running') throw new AppError('FL_ERR_TASK_NOT_RUNNING', { task: this.task.id });
    if (!a || round !== a.round) {
      if (round < (a?.round ?? this.task.nextRound)) throw new AppError('FL_ERR_ROUND_LATE_REPORT', { round, current: a?.round ?? null });
      throw new AppError('FL_ERR_ROUND_WRONG_ROUND', { round, current: a?.round ?? null });
    }
    return a;
  }

  /** Resolves when the device may upload its report (an upload slot is its own); throws the code a report would get. */
  async onFitReady(deviceId: string, round: number, bytes: number): Promise<void> {
    await this.clusterReady();
    const a = this.roundFor(round);
    a.admit(deviceId, bytes);
    await a.gate.acquire(deviceId);
  }

  /**
   * A fit report from a device. It must hold the upload slot its `fit:ready` was granted
   * (FL_ERR_PROTO_UPLOAD_NOT_GRANTED otherwise); the slot is released whatever the outcome.
   * Throws AppError with the rejection code; on success the report is folded in. A rejected
   * report does not use up the device's place: it may ask again (`fit:ready`) and resend until the
   * round closes (docs/api.md, "Device connection"). Cluster: the report is claimed cluster-wide
   * first (one per device and round; a refused report gives its claim back), folded into this
   * node's shard, and a follower tells the leader it was counted.
   */
  async onReport(deviceId: string, r: FitReport): Promise<void> {
    await this.clusterReady();
    const a = this.roundFor(r.round);
    const cluster = this.deps.cluster;
    if (cluster && !(await cluster.claimReport(this.task.id, r.round, deviceId))) {
      a.gate.release(deviceId);
      a.reject(deviceId, 'FL_ERR_ROUND_DUPLICATE_REPORT', { round: r.round });
    }
    try {
      if (a.secagg) throw new AppError('FL_ERR_SECAGG_PLAIN_REPORT', { round: r.round });
      a.accept(deviceId, r, a.gate.holds(deviceId));
    } catch (err) {
      if (cluster) void cluster.releaseReport(this.task.id, r.round, deviceId).catch(() => undefined);
      throw err;
    } finally {
      a.gate.release(deviceId);
    }
    if (this.following) return cluster!.reported(this.task.id, r.round, deviceId, r.delta.byteLength);
    await this.counted(a);
  }

  /** Cluster leader: a follower folded a report of one of its devices into its shard. */
  async onRemoteReport(deviceId: string, round: number, bytes: number): Promise<void> {
    const a = this.active;
    if (this.following || !a || a.round !== round || a.state !== 'training') return;
    if (a.countRemote(deviceId, bytes)) await this.counted(a);
  }

  /** Cluster follower: the leader's latest round may still be on its way to this node; wait for it. */
  private async clusterReady(): Promise<void> {
    const c = this.deps.cluster;
    if (c && !c.leads(this.task.id)) await c.ready(this.task.id);
  }

  private async counted(a: ActiveRound): Promise<void> {
    if (a.reported.size >= a.plan.clientsPerRound) await this.aggregate(a);
    else if (a.settled) await this.settle(a);
  }

  /**
   * A selected device failed (fit:failure: dropped at once) or lost its connection (dropped only
   * if it has not said hello again within the reconnect grace, so a device whose network blinks
   * mid-round can still report before the deadline).
   */
  onDeviceGone(deviceId: string, reason: string, grace = false): void {
    const a = this.active;
    if (!a) return;
    a.gate.release(deviceId);
    if (this.following) return this.deps.cluster!.deviceGone(this.task.id, deviceId, reason, grace);
    if (a.state !== 'training') return;
    if (grace) a.disconnected.add(deviceId);
    const drop = () => {
      if (a.secagg) {
        if (this.active === a && (!grace || !this.deps.devices.connected(deviceId)) && a.drop(deviceId, reason)) a.secagg.gone(deviceId);
        return;
      }
      // After the grace, only a device that has not come back (to any node) counts as dropped; a reported failure drops at once.
      if (this.active === a && a.state === 'training' && (!grace || !this.deps.devices.connected(deviceId)) && a.drop(deviceId, reason) && a.settled) void this.settle(a);
    };
    if (!grace || this.deps.reconnectGraceMs <= 0) return drop();
    const t = setTimeout(drop, this.deps.reconnectGraceMs);
    t.unref?.();
  }

  /** The round stops taking reports: deadline timer off, devices waiting for an upload slot told it is over. */
  private clearTimer(a: ActiveRound): void {
    if (a.timer) clearTimeout(a.timer);
    a.timer = null;
    a.secagg?.dispose();
    a.gate.clear(new AppError('FL_ERR_ROUND_LATE_REPORT', { round: a.round }));
  }

  /** When a round closes, selected devices that lost their connection during it and did not report are recorded as dropped. */
  private recordGone(a: ActiveRound): void {
    for (const id of a.selected) if (!a.reported.has(id) && (a.disconnected.has(id) || !this.deps.devices.connected(id))) a.drop(id, 'disconnected');
  }

  private async aggregate(a: ActiveRound): Promise<void> {
    if (a.state !== 'training') return;
    this.clearTimer(a);
    this.recordGone(a);
    a.transition('aggregating');
    const t0 = performance.now();
    try {
      // Cluster: the other nodes' shards (their devices' reports, folded) join this one; DP noise
      // and the server optimizer then run once, here, on the combined aggregate.
      if (this.deps.cluster) {
        for (const p of await this.deps.cluster.gatherPartials(this.task.id, a.round)) {
          a.aggregator.mergePartial!(p);
          for (const d of (p.meta.devices as string[] | undefined) ?? []) a.countRemote(d, 0, true);
        }
      }
      const manifest = this.task.spec.manifest;
      const outcome = this.strategy.aggregateFit(a.round, a.aggregator, a.failures, gatherTrainable(this.weights, manifest));
      const next = scatterTrainable(this.weights, outcome.weights, manifest);
      a.record.trainMetrics = outcome.metrics;
      if (a.secagg) a.record.trainMetrics.participants = a.reported.size; // the strategy saw one update: the unmasked mean
      a.transition('committing');
      const central = this.deps.evaluator ? await this.deps.evaluator(next, this.task.spec) : {};
      a.record.centralMetrics = central;
      await this.commit(a, next, performance.now() - t0);
    } catch (err) {
      this.deps.logger.error({ err, task: this.task.id, round: a.round }, 'aggregation or commit failed');
      // aggregateFit may already have advanced the strategy's state (momentum, moments, the privacy
      // accountant) for an aggregate that never became a model: go back to what is stored, as a
      // restart would, so the retried round starts from exactly the committed state.
      this.strategy = committedStrategy(this.task);
      await this.fail(`commit failed: ${err instanceof AppError ? `${err.code}: ` : ''}${String(err)}`);
      return;
    }
    await this.afterCommit(a);
  }

  private async commit(a: ActiveRound, weights: Float32Array, aggMs: number): Promise<void> {
    const version = this.task.currentVersion + 1;
    const now = Date.now();
    const committed: RoundRecord = { ...a.record, state: 'done', committedVersion: version, endedAt: now, aggregationMs: aggMs };
    const metrics: Record<string, number> = { participants: a.reported.size };
    if (committed.trainMetrics.loss !== undefined) metrics.trainLoss = committed.trainMetrics.loss;
    if (committed.centralMetrics.accuracy !== undefined) metrics.accuracy = committed.centralMetrics.accuracy;
    if (committed.centralMetrics.loss !== undefined) metrics.loss = committed.centralMetrics.loss;
    const strategyState = this.strategy.exportState?.();
    const screeningState = this.screen?.exportState();
    // Blobs (weights and variants) first, then one store transaction: version, round, task, `latest`.
    const v = await this.deps.registry.commitRound({
      task: { id: this.task.id, currentVersion: version, nextRound: this.task.nextRound, strategyState, screeningState, state: this.task.state },
      round: committed,
      version: {
        model: this.task.modelName,
        version,
        createdAt: now,
        spec: this.task.spec,
        weights,
        taskId: this.task.id,
        round: a.round,
        parentVersion: this.task.currentVersion,
        metrics,
      },
      by: this.deps.cluster ? `coordinator@${this.deps.cluster.nodeId}` : 'coordinator',
      // the token of the leadership this round ran under: a newer leader's claim refuses it
      ...(this.deps.cluster ? { fence: this.roundFence ?? 0 } : {}),
    });
    a.transition('done');
    Object.assign(a.record, committed);
    this.task = { ...this.task, currentVersion: version, strategyState, screeningState };
    this.weights = weights;
    this.deps.stats.roundsCommitted++;
    try {
      await this.deps.onPublished?.(v, weights);
    } catch (err) {
      this.deps.logger.error({ err, model: v.model, version }, 'post-publish hook failed (the version is committed)');
    }
  }

  private async afterCommit(a: ActiveRound): Promise<void> {
    this.active = null;
    this.deps.cluster?.roundEnded(this.task.id, a.round, 'done');
    this.deps.events.emit('round', a.record);
    const plan = this.task.plan;
    const acc = a.record.centralMetrics.accuracy;
    if (plan.targetAccuracy !== undefined && acc !== undefined && acc >= plan.targetAccuracy) {
      await this.setState('done', `target accuracy ${plan.targetAccuracy} reached at round ${a.round}`);
    } else if (a.round >= plan.maxRounds) {
      await this.setState('done', `round cap ${plan.maxRounds} reached`);
    }
    this.evaluation.start(a.round, this.task.currentVersion);
    this.poke();
  }

  private async fail(reason: string): Promise<void> {
    const a = this.active;
    if (!a || a.state === 'done' || a.state === 'failed') return;
    this.clearTimer(a);
    if (a.state === 'training') this.recordGone(a);
    a.transition('failed');
    a.record.failureReason = reason;
    a.record.endedAt = Date.now();
    for (const id of a.selected) {
      if (!a.reported.has(id)) this.deps.devices.send(id, 'round:cancel', { taskId: this.task.id, round: a.round, reason: reason.slice(0, 256) });
    }
    this.active = null;
    this.deps.cluster?.roundEnded(this.task.id, a.round, 'failed', reason);
    this.deps.stats.roundsFailed++;
    try {
      await this.deps.store.saveRound(a.record);
    } catch (err) {
      this.deps.logger.error({ err }, 'saving failed round');
    }
    this.deps.events.emit('round', a.record);
    if (a.round >= this.task.plan.maxRounds && this.task.state === 'running') await this.setState('done', `round cap ${this.task.plan.maxRounds} reached`);
    // Back off a little so a task with too few devices does not spin.
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.poke(), 200);
  }

  /** A secure-aggregation message (keys, shares, unmasking shares) from a device. */
  async onSecAgg(deviceId: string, m: SecAggUp): Promise<void> {
    const a = this.roundFor(m.round);
    if (!a.secagg) throw new AppError('FL_ERR_SECAGG_WRONG_PHASE', { why: 'this task does not use secure aggregation' });
    await a.secagg.receive(deviceId, m.phase, m.data);
  }

  /** A masked input, after an ok fit:ready. */
  onMasked(deviceId: string, m: SecAggMasked): void {
    takeMasked(this.roundFor(m.round), deviceId, m);
  }

  /** Largest `secagg` message a device of this task may send now. */
  get secAggMessageBytes(): number {
    return this.active?.secagg?.maxMessageBytes ?? 0;
  }

  /** Give back the upload slot a device holds without reporting (its report was refused before it reached the round). */
  releaseUpload(deviceId: string): void {
    this.active?.gate.release(deviceId);
  }

  /** An evaluation report from a device (see FederatedEvaluation); a follower hands it to the leader. */
  onEvalReport(deviceId: string, r: EvalReport): void {
    if (this.deps.cluster && !this.deps.cluster.leads(this.task.id)) return this.deps.cluster.evalReported(this.task.id, deviceId, r);
    this.evaluation.onReport(deviceId, r);
  }

  /**
   * Cluster follower: take reports for the leader's round `record` (opened with `plan`) into a
   * shard of this node, folded with the strategy as of the task's last commit (`task`, re-read
   * from the store). No timers: the leader closes the round.
   */
  follow(task: TaskRecord, weights: Float32Array, record: RoundRecord, plan: TaskPlan): void {
    if (this.active) this.clearTimer(this.active);
    this.task = task;
    this.weights = weights;
    this.strategy = committedStrategy(task);
    this.active = this.openRound({ ...record, reported: [], rejected: [], dropped: [] }, plan, null);
    this.following = true;
  }

  /** Cluster follower: the leader committed; take the task's new record and weights in place (reports in flight keep this runner). */
  adopt(task: TaskRecord, weights: Float32Array): void {
    if (this.deps.cluster?.leads(this.task.id)) return;
    this.task = task;
    this.weights = weights;
    this.strategy = committedStrategy(task);
    this.nextStrategy = null;
  }

  /** Cluster follower: the leader closes `round`: hand over this node's shard (null when it has none). */
  takePartial(round: number): { partial: AggregatorPartial; devices: string[] } | null {
    const a = this.active;
    if (!this.following || !a || a.round !== round || a.state !== 'training') return null;
    this.clearTimer(a);
    a.transition('aggregating'); // later reports for this round are late
    if (a.reported.size === 0) return null;
    return { partial: a.aggregator.exportPartial!(), devices: [...a.reported] };
  }

  /** Cluster follower: the leader ended `round` (or any older one): drop the shard. */
  endFollowing(round: number): void {
    const a = this.active;
    if (!this.following || !a || a.round > round) return;
    this.clearTimer(a);
    this.active = null;
  }

  /** Stop timers; the coordinator is shutting down (state in the store is left as is, for resume). */
  dispose(): void {
    if (this.active) this.clearTimer(this.active);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.evaluation.dispose();
  }
}
