import { clientPlanOf, effectiveMinAvailable, effectiveMinReports, type TaskPlan } from '@flotilla/protocol';
import { gatherTrainable, scatterTrainable, trainableLength } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import { createRng, type Rng } from '../fl/rng.js';
import { closeAtDeadline } from '../fl/round-state.js';
import type { Strategy } from '../fl/strategy.js';
import { createStrategy } from '../fl/strategies/index.js';
import type { RoundRecord, TaskRecord } from '../store/records.js';
import { ActiveRound } from './active-round.js';
import { FederatedEvaluation } from './federated-evaluation.js';
import { NormScreen, ScreeningOptionsSchema } from '../fl/screening.js';
import type { CoordinatorDeps } from './deps.js';
import { artifactPaths } from './artifact-paths.js';
import { firstOutOfRange, rangeHeadroom } from '../fl/update-checks.js';
import { beginSecAgg, foldSecure } from './secagg/secagg-hook.js';
import { encodeServerControl } from './control-variates.js';
import { commitRound, newRoundRecord } from './round-record.js';
import { ReportTokens } from './report-tokens.js';
import { REPORT_UPLOAD_PATH } from '@flotilla/protocol';

/** The task's strategy as of its last commit: built from the plan, with the stored state imported. */
export function committedStrategy(task: TaskRecord): Strategy {
  const s = createStrategy(task.plan);
  if (task.strategyState !== undefined) s.importState?.(task.strategyState);
  return s;
}

/**
 * The round loop of one task on the node that runs its rounds (docs/architecture.md, "Life of a
 * round"): select, reserve the round number, instruct, close (target, deadline, everyone
 * settled), aggregate, commit, fail, then start the next. Owns the task's record, its global
 * weights in memory (O(model)), its strategy and at most one round in flight. Strategies,
 * screening and reports see only the trainable vector (protocol/src/tensor/trainable.ts);
 * commits lay it over the full weights, so frozen weights stay bit-identical across versions.
 * All state that must survive a crash goes through the store before anyone is told: the round's
 * number is reserved before instructions go out, and a version is visible only after
 * `commitRound` succeeded. How reports reach the round, and a cluster follower's shard of
 * another node's round, are TaskRunner's (task-runner.ts), which extends this loop.
 */
export class RoundLoop {
  protected active: ActiveRound | null = null;
  private busy = false; // aggregating/committing, or starting a round
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  protected readonly evaluation: FederatedEvaluation;
  protected strategy: Strategy;
  /** Built from a plan update; replaces `strategy` (carrying its state) when the next round starts. */
  protected nextStrategy: Strategy | null = null;
  /** Norm screening of updates, when the plan asks for it (history kept across rounds and saved with each commit). */
  private readonly screen: NormScreen | null;
  protected readonly rng: Rng;
  /** Cluster: `active` is this node's shard of another node's round (see TaskRunner.follow). */
  protected following = false;
  /** Cluster: the fencing token held when the round in flight started. */
  private roundFence: number | undefined;

  constructor(
    protected readonly deps: CoordinatorDeps,
    protected task: TaskRecord,
    protected weights: Float32Array,
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
    const record = newRoundRecord(this.task, round, selected, Date.now());
    // Reserve the round number first: a crash after this never reuses it.
    this.task = await this.deps.store.updateTask(this.task.id, { nextRound: round + 1 });
    // Paused or stopped meanwhile (by the operator on this node or another): the number stays used, no round opens.
    if (this.task.state !== 'running') return;
    const active = this.openRound(record, plan, this.screen);
    active.transition('training');
    // HTTP report uploads (report-upload.ts): not for secure aggregation (masked inputs) nor SCAFFOLD (a control delta rides along).
    if (this.deps.reportUploads && !plan.secureAggregation && !active.aggregator.requiresControl) active.uploads = new ReportTokens();
    await this.deps.store.saveRound(record);
    this.active = active;
    this.roundFence = this.deps.cluster?.fence(this.task.id);
    try {
      await this.deps.cluster?.roundOpened(record, plan, active.uploads?.key.toString('base64'));
    } catch (err) {
      // Redis down as the round opens: the round fails (no device was instructed) instead of staying
      // in flight without a deadline, which stalled the task for good; the next start waits a little.
      await this.fail(`the round could not be announced to the cluster: ${String(err).slice(0, 200)}`, 2000);
      return;
    }
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
      if (active.uploads) {
        const token = active.uploads.issue({ t: this.task.id, r: round, d: id, v: this.task.currentVersion });
        this.deps.devices.send(id, 'fit:upload', { taskId: this.task.id, round, url: REPORT_UPLOAD_PATH + token });
      }
      record.bytesDown += this.weights.byteLength + (control?.byteLength ?? 0);
    }
    this.deps.stats.roundsStarted++;
    active.timer = setTimeout(() => void this.onDeadline(active), plan.roundDeadlineMs);
    if (active.settled) await this.settle(active);
  }

  /** The in-memory round over `record`: upload slots, the strategy's aggregator, the checks every report passes. */
  protected openRound(record: RoundRecord, plan: TaskPlan, screen: NormScreen | null): ActiveRound {
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
  protected async settle(active: ActiveRound): Promise<void> {
    if (active.reported.size >= effectiveMinReports(active.plan)) await this.aggregate(active);
    else await this.fail(`only ${active.reported.size} reports and every other selected device dropped`);
  }

  /** A report was counted (here or on another node): close the round at its target, or once everyone settled. */
  protected async counted(a: ActiveRound): Promise<void> {
    if (a.reported.size >= a.plan.clientsPerRound) await this.aggregate(a);
    else if (a.settled) await this.settle(a);
  }

  /** The round stops taking reports: deadline timer off, devices waiting for an upload slot told it is over. */
  protected clearTimer(a: ActiveRound): void {
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

  private async commit(a: ActiveRound, weights: Float32Array, aggregationMs: number): Promise<void> {
    const strategyState = this.strategy.exportState?.();
    const screeningState = this.screen?.exportState();
    const { version: v, committed } = await commitRound(this.deps, { task: this.task, round: a, weights, aggregationMs, strategyState, screeningState, fence: this.roundFence });
    a.transition('done');
    Object.assign(a.record, committed);
    this.task = { ...this.task, currentVersion: v.version, strategyState, screeningState };
    this.weights = weights;
    this.deps.stats.roundsCommitted++;
    try {
      await this.deps.onPublished?.(v, weights);
    } catch (err) {
      this.deps.logger.error({ err, model: v.model, version: v.version }, 'post-publish hook failed (the version is committed)');
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

  /** The round in flight fails; the next one may start after `retryMs`. */
  protected async fail(reason: string, retryMs = 200): Promise<void> {
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
    this.retryTimer = setTimeout(() => this.poke(), retryMs);
  }

  /** Stop timers; the coordinator is shutting down (state in the store is left as is, for resume). */
  dispose(): void {
    if (this.active) this.clearTimer(this.active);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.evaluation.dispose();
  }
}
