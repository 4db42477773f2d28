import { clientPlanOf, effectiveMinAvailable, gatherTrainable, scatterTrainable, trainableLength, type EvalReport, type FitReport, type TaskPlan } from '@flotilla/protocol';
import { AppError } from '../../errors.js';
import { createRng, sample, type Rng } from '../../fl/rng.js';
import type { FitAggregator, Strategy } from '../../fl/strategy.js';
import { createStrategy } from '../../fl/strategies/index.js';
import { committedStrategy } from '../round-loop.js';
import { newRoundRecord } from '../round-record.js';
import { NormScreen, ScreeningOptionsSchema } from '../../fl/screening.js';
import { firstOutOfRange } from '../../fl/update-checks.js';
import { DEFAULT_STALENESS_WEIGHTING, stalenessMetrics, stalenessWeight } from '../../fl/async/staleness.js';
import type { RoundRecord, TaskRecord } from '../../store/records.js';
import type { CoordinatorDeps } from '../deps.js';
import { artifactPaths } from '../artifact-paths.js';
import { FederatedEvaluation } from '../federated-evaluation.js';
import { AsyncJobs, type AsyncJob } from './async-jobs.js';
import { checkedDelta } from './async-intake.js';
import { AsyncPublisher, type StepOutcome } from './async-publisher.js';

/** The buffer filling now: the reports folded since the last model step. */
interface Buffer {
  record: RoundRecord;
  aggregator: FitAggregator;
  staleness: number[];
  devices: Set<string>;
}

/**
 * Runs one asynchronous task (docs/async.md): FedBuff-style buffered aggregation. Up to
 * `concurrency` devices train at once, each from the latest published version; a device that
 * finishes, fails or leaves is replaced at once. Each accepted report is weighted by its staleness
 * (model steps since its base version was published), scaled by the server learning rate and
 * folded into the strategy's running aggregate (memory O(model)); at `bufferSize` reports the model
 * steps, and every `publishEvery` steps the publisher commits a version with the same atomicity as
 * a round (AsyncPublisher). The public surface is the sync TaskRunner's, so the gateway, routes
 * and metrics drive both alike. On the wire, a fit instruction's `round` is the base version and a
 * report names it back, so devices keep the same SDK.
 */
export class AsyncTaskRunner {
  private strategy: Strategy;
  private nextStrategy: Strategy | null = null;
  private readonly screen: NormScreen | null;
  private readonly rng: Rng;
  private readonly evaluation: FederatedEvaluation;
  private readonly jobs: AsyncJobs;
  private readonly publisher: AsyncPublisher;
  private buffer: Buffer | null = null;
  /** Model steps applied (the number of the last step); step n's record is round n. */
  private step: number;
  /** The trainable vector of the in-memory model, which strategies step and previews check. */
  private base: Float32Array;

  constructor(
    private readonly deps: CoordinatorDeps,
    task: TaskRecord,
    private weights: Float32Array,
  ) {
    this.strategy = committedStrategy(task);
    this.screen = task.plan.screening ? new NormScreen(ScreeningOptionsSchema.parse(task.plan.screening)) : null;
    if (this.screen && task.screeningState !== undefined) this.screen.importState(task.screeningState);
    this.rng = createRng(task.plan.seed ?? Math.floor(Math.random() * 2 ** 31));
    this.step = task.nextRound - 1;
    this.base = gatherTrainable(weights, task.spec.manifest);
    this.publisher = new AsyncPublisher(deps, task, this.step, {
      currentStep: () => this.step,
      reset: (t, w) => this.reset(t, w),
      published: (record, version) => this.afterPublish(record, version),
    });
    this.evaluation = new FederatedEvaluation(deps, () => this.publisher.task, () => this.strategy, this.rng);
    const slots = Math.max(2, Math.min(64, Math.floor(deps.uploadBudgetBytes / (12 + 4 * this.trainableLength))));
    this.jobs = new AsyncJobs(slots, (job) => this.onExpired(job));
  }

  get id(): string {
    return this.publisher.task.id;
  }

  get record(): TaskRecord {
    return this.publisher.task;
  }

  private get plan(): TaskPlan {
    return this.publisher.task.plan;
  }

  /** No round is in flight in async mode: steps are listed once applied (the filling buffer is `buffered`). */
  get currentRound(): null {
    return null;
  }

  /** The record of the buffer filling now (its reports, rejections and drops so far), or null. */
  get buffered(): RoundRecord | null {
    return this.buffer?.record ?? null;
  }

  get globalWeights(): Float32Array {
    return this.weights;
  }

  get trainableLength(): number {
    return trainableLength(this.publisher.task.spec.manifest);
  }

  async setState(state: TaskRecord['state'], reason?: string): Promise<void> {
    await this.publisher.setState(state, reason);
    if (state === 'running') this.poke();
  }

  async updatePlan(plan: TaskPlan): Promise<void> {
    const next = createStrategy(plan);
    await this.publisher.updateTask({ plan });
    this.nextStrategy = next;
    this.poke();
  }

  /**
   * Pause/stop: training jobs end (their reports are refused), the partial buffer is dropped, and
   * model steps not yet published are published now, so a halt loses no step.
   */
  async halt(state: 'paused' | 'stopped' | 'done', reason: string): Promise<void> {
    this.jobs.clear(new AppError('FL_ERR_TASK_NOT_RUNNING', { task: this.id }));
    this.buffer = null;
    await this.publisher.flush();
    await this.setState(state, reason);
  }

  /** Admit devices up to `concurrency`: connected, not training, and (DP) not already in the buffer. */
  poke(): void {
    const task = this.publisher.task;
    if (task.state !== 'running' || this.publisher.busy) return;
    const plan = task.plan;
    if (this.step >= plan.maxRounds) return; // the last step is being published; the task ends with it
    const connected = this.deps.devices.eligible(task.id);
    if (connected.length < effectiveMinAvailable(plan)) return;
    const free = plan.concurrency! - this.jobs.size;
    if (free <= 0) return;
    const oncePerBuffer = this.strategy.name === 'dpfedavg';
    const eligible = connected.filter((id) => !this.jobs.has(id) && !(oncePerBuffer && this.buffer?.devices.has(id)));
    const chosen = sample(eligible, free, this.rng);
    if (chosen.length === 0) return;
    const b = this.openBuffer();
    const version = task.currentVersion;
    const paths = artifactPaths(task.modelName, version);
    const clientPlan = this.strategy.configureClientPlan?.(b.record.round, clientPlanOf(plan)) ?? clientPlanOf(plan);
    for (const id of chosen) {
      if (!this.deps.devices.connected(id)) continue;
      const job = this.jobs.admit(id, version, this.publisher.publishedStep, plan.roundDeadlineMs);
      this.deps.devices.send(id, 'fit:instruction', {
        taskId: task.id,
        round: version,
        modelName: task.modelName,
        modelVersion: version,
        modelUrl: paths.modelJson,
        weightsUrl: paths.weights,
        plan: clientPlan,
        deadline: job.deadline,
      });
      b.record.selected.push(id);
      b.record.bytesDown += this.weights.byteLength;
    }
  }

  private openBuffer(): Buffer {
    if (this.buffer) return this.buffer;
    if (this.nextStrategy) {
      const state = this.strategy.exportState?.();
      if (state !== undefined) this.nextStrategy.importState?.(state);
      this.strategy = this.nextStrategy;
      this.nextStrategy = null;
    }
    const task = this.publisher.task;
    const round = this.step + 1;
    const record: RoundRecord = { ...newRoundRecord(task, round, [], Date.now()), state: 'training' };
    this.buffer = { record, aggregator: this.strategy.beginFit(round, this.trainableLength), staleness: [], devices: new Set() };
    return this.buffer;
  }

  /** Reports are taken while the task runs and has steps left (the step cap may be reached before 'done' is stored). */
  private runningOrThrow(): void {
    const t = this.publisher.task;
    if (t.state !== 'running' || this.step >= t.plan.maxRounds) throw new AppError('FL_ERR_TASK_NOT_RUNNING', { task: this.id, ...(t.state === 'running' ? { why: `step cap ${t.plan.maxRounds} reached` } : {}) });
  }

  /** fit:ready: the report's base version (`round` on the wire) must belong to this device's job and be fresh enough. */
  async onFitReady(deviceId: string, round: number, bytes: number): Promise<void> {
    this.runningOrThrow();
    this.lookup(deviceId, round);
    if (bytes > this.plan.maxUpdateBytes) throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit: this.plan.maxUpdateBytes, got: bytes });
    await this.jobs.gate.acquire(deviceId);
  }

  private lookup(deviceId: string, version: number): { job: AsyncJob; staleness: number } {
    return this.jobs.lookup(deviceId, version, this.publisher.task.currentVersion, this.step, this.plan.maxStaleness);
  }

  /** A report: checked completely, weighted by staleness and folded; the model steps when the buffer is full. */
  async onReport(deviceId: string, r: FitReport): Promise<void> {
    let staleness: number;
    let delta: Float32Array;
    let scale: number;
    try {
      this.runningOrThrow();
      ({ staleness } = this.lookup(deviceId, r.round));
      if (!this.jobs.gate.holds(deviceId)) throw new AppError('FL_ERR_PROTO_UPLOAD_NOT_GRANTED', { round: r.round });
      scale = stalenessWeight(this.plan.stalenessWeighting ?? DEFAULT_STALENESS_WEIGHTING, staleness) * (this.plan.serverLearningRate ?? 1);
      const strategy = this.strategy;
      const base = this.base;
      const preview = (d: Float32Array) => strategy.previewOutOfRange?.(d, base) ?? firstOutOfRange(base, d);
      delta = checkedDelta(r, {
        plan: this.plan,
        modelLength: this.trainableLength,
        screen: this.screen,
        outOfRange: (d) => preview(scale === 1 ? d : d.map((x) => x * scale)),
      });
    } catch (err) {
      this.jobs.gate.release(deviceId);
      if (err instanceof AppError) this.buffer?.record.rejected.push({ clientId: deviceId, code: err.code, at: Date.now() });
      throw err;
    }
    const b = this.openBuffer();
    if (scale !== 1) for (let i = 0; i < delta.length; i++) delta[i] *= scale;
    const numExamples = Math.min(r.numExamples, this.plan.maxExamplesPerReport ?? r.numExamples);
    b.aggregator.add({ clientId: deviceId, numExamples, delta, metrics: r.metrics });
    this.jobs.end(deviceId);
    b.record.reported.push(deviceId);
    b.staleness.push(staleness);
    b.devices.add(deviceId);
    b.record.bytesUp += r.delta.byteLength;
    if (b.aggregator.count >= this.plan.bufferSize!) this.stepModel(b);
    this.poke();
  }

  /** The model steps on a full buffer; persisting (and publishing every publishEvery steps) is queued in order. */
  private stepModel(b: Buffer): void {
    this.buffer = null;
    const t0 = performance.now();
    const task = this.publisher.task;
    const record = b.record;
    this.step = record.round;
    try {
      record.state = 'aggregating';
      const outcome = this.strategy.aggregateFit(record.round, b.aggregator, [], this.base);
      this.weights = scatterTrainable(this.weights, outcome.weights, task.spec.manifest);
      this.base = outcome.weights;
      record.trainMetrics = { ...outcome.metrics, ...stalenessMetrics(b.staleness) };
    } catch (err) {
      // A strategy that cannot step is a bug; go back to the last published state, as a restart would.
      this.deps.logger.error({ err, task: task.id, step: record.round }, 'async step failed');
      void this.publisher.abandon(record, `step failed: ${String(err)}`);
      return;
    }
    record.state = 'committing';
    record.endedAt = Date.now();
    record.aggregationMs = performance.now() - t0;
    const outcome: StepOutcome = { record, weights: this.weights, ...this.snapshot() };
    const plan = task.plan;
    if (record.round - this.publisher.publishedStep >= (plan.publishEvery ?? 1) || record.round >= plan.maxRounds) this.publisher.publish(outcome);
    else this.publisher.keep(outcome);
  }

  private snapshot(): { strategyState: unknown; screeningState: number[] | undefined } {
    return { strategyState: this.strategy.exportState?.(), screeningState: this.screen?.exportState() };
  }

  /** A publish or a step record could not be stored: back to the last committed state (a restart in place). */
  private reset(task: TaskRecord, weights: Float32Array): void {
    this.weights = weights;
    this.base = gatherTrainable(weights, task.spec.manifest);
    this.strategy = committedStrategy(task);
    this.nextStrategy = null;
    if (this.screen) this.screen.importState(task.screeningState ?? []);
    this.buffer = null;
    this.poke();
  }

  private async afterPublish(record: RoundRecord, version: number): Promise<void> {
    const plan = this.plan;
    const acc = record.centralMetrics.accuracy;
    if (plan.targetAccuracy !== undefined && acc !== undefined && acc >= plan.targetAccuracy) {
      await this.stopTraining('done', `target accuracy ${plan.targetAccuracy} reached at step ${record.round}`);
    } else if (record.round >= plan.maxRounds) {
      await this.stopTraining('done', `step cap ${plan.maxRounds} reached`);
    }
    this.evaluation.start(record.round, version);
    this.poke();
  }

  private async stopTraining(state: 'done', reason: string): Promise<void> {
    this.jobs.clear(new AppError('FL_ERR_TASK_NOT_RUNNING', { task: this.id }));
    this.buffer = null;
    await this.setState(state, reason);
  }

  private onExpired(job: AsyncJob): void {
    this.buffer?.record.dropped.push(job.deviceId);
    this.poke();
  }

  /** A training device failed (at once) or disconnected (after the reconnect grace, unless it came back): its job ends and another device starts. */
  onDeviceGone(deviceId: string, reason: string, grace = false): void {
    const job = this.jobs.get(deviceId);
    if (!job) return;
    const drop = () => {
      if (this.jobs.get(deviceId) !== job || (grace && this.deps.devices.connected(deviceId))) return;
      this.jobs.end(deviceId);
      this.buffer?.record.dropped.push(deviceId);
      this.deps.logger.info({ task: this.id, device: deviceId, reason }, 'async job ended');
      this.poke();
    };
    if (!grace || this.deps.reconnectGraceMs <= 0) return drop();
    this.jobs.gate.release(deviceId);
    setTimeout(drop, this.deps.reconnectGraceMs).unref?.();
  }

  releaseUpload(deviceId: string): void {
    this.jobs.gate.release(deviceId);
  }

  onEvalReport(deviceId: string, r: EvalReport): void {
    this.evaluation.onReport(deviceId, r);
  }

  dispose(): void {
    this.jobs.clear(new AppError('FL_ERR_TASK_NOT_RUNNING', { task: this.id }));
    this.publisher.dispose();
    this.evaluation.dispose();
  }
}
