import type { RoundRecord, TaskRecord } from '../../store/records.js';
import type { Store } from '../../store/store.js';
import type { CoordinatorDeps } from '../deps.js';

/** One model step, ready to be stored: its record and what the model and server state were after it. */
export interface StepOutcome {
  record: RoundRecord;
  weights: Float32Array;
  strategyState: unknown;
  screeningState: number[] | undefined;
}

export interface PublisherHooks {
  /** The model step the runner is at (the staleness baseline of a version published or reloaded now). */
  currentStep(): number;
  /** Storing failed: the runner goes back to this committed task and its weights. */
  reset(task: TaskRecord, weights: Float32Array): void;
  /** A version was committed from `record` (target and step-cap checks, federated evaluation). */
  published(record: RoundRecord, version: number): Promise<void>;
}

/**
 * Stores an asynchronous task's model steps in order, off the report path (docs/async.md,
 * "Versions and resume"). A kept step is stored as a done round without a version; a published
 * one goes through Registry.commitRound like a round: blobs first, then one store transaction
 * with the version, the step's record, the task's new version, step counter, strategy and
 * screening state, and `latest`. So a crash loses at most the steps since the last publish and the
 * buffer; a restart resumes from the last published version with the strategy state committed
 * with it (markLostSteps marks the lost steps' records failed). When storing fails, later queued
 * steps are dropped and the runner is reset to what the store holds.
 */
export class AsyncPublisher {
  /** The model step the current version was taken at. */
  publishedStep: number;
  /** True while the runner is being reset after a failure: no device is admitted meanwhile. */
  busy = false;
  private chain: Promise<void> = Promise.resolve();
  private generation = 0;
  /** The last step stored but not published, if any. */
  private kept: StepOutcome | null = null;

  constructor(
    private readonly deps: CoordinatorDeps,
    public task: TaskRecord,
    step: number,
    private readonly hooks: PublisherHooks,
  ) {
    this.publishedStep = step;
  }

  private enqueue(op: () => Promise<void>, record: RoundRecord): Promise<void> {
    const gen = this.generation;
    this.chain = this.chain.then(async () => {
      if (gen !== this.generation) return;
      try {
        await op();
      } catch (err) {
        this.deps.logger.error({ err, task: this.task.id, step: record.round }, 'storing an async step failed');
        await this.recover(record, `commit failed: ${String(err)}`);
      }
    });
    return this.chain;
  }

  keep(o: StepOutcome): void {
    this.kept = o;
    void this.enqueue(async () => {
      // The step's number is reserved before its record is stored (as round-loop.ts reserves a
      // round's): a kill between the two writes leaves a number unused, never a stored step whose
      // number a restarted runner hands out again.
      this.task = { ...(await this.deps.store.updateTask(this.task.id, { nextRound: o.record.round + 1 })) };
      o.record.state = 'done';
      await this.deps.store.saveRound(o.record);
      this.deps.events.emit('round', o.record);
    }, o.record);
  }

  publish(o: StepOutcome): Promise<void> {
    this.kept = null;
    return this.enqueue(() => this.commit(o), o.record);
  }

  /** Publish the last kept step, if any (pause, stop), and wait until everything queued is stored. */
  async flush(): Promise<void> {
    if (this.kept && this.kept.record.round > this.publishedStep) await this.publish(this.kept);
    await this.chain;
  }

  /** A step that failed before it could be stored: record it failed and go back to the committed state. */
  abandon(record: RoundRecord, reason: string): Promise<void> {
    return this.enqueue(() => this.recover(record, reason), record);
  }

  private async commit(o: StepOutcome): Promise<void> {
    const task = this.task;
    const version = task.currentVersion + 1;
    const central = this.deps.evaluator ? await this.deps.evaluator(o.weights, task.spec) : {};
    const committed: RoundRecord = { ...o.record, state: 'done', committedVersion: version, centralMetrics: central };
    const metrics: Record<string, number> = { participants: o.record.reported.length };
    if (committed.trainMetrics.loss !== undefined) metrics.trainLoss = committed.trainMetrics.loss;
    if (central.accuracy !== undefined) metrics.accuracy = central.accuracy;
    if (central.loss !== undefined) metrics.loss = central.loss;
    const next = { currentVersion: version, nextRound: o.record.round + 1, strategyState: o.strategyState, screeningState: o.screeningState };
    const v = await this.deps.registry.commitRound({
      task: { id: task.id, ...next },
      round: committed,
      version: { model: task.modelName, version, createdAt: Date.now(), spec: task.spec, weights: o.weights, taskId: task.id, round: o.record.round, parentVersion: task.currentVersion, metrics },
      by: 'coordinator',
    });
    Object.assign(o.record, committed);
    this.task = { ...this.task, ...next };
    this.publishedStep = o.record.round;
    this.deps.stats.roundsCommitted++;
    try {
      await this.deps.onPublished?.(v, o.weights);
    } catch (err) {
      this.deps.logger.error({ err, model: v.model, version }, 'post-publish hook failed (the version is committed)');
    }
    this.deps.events.emit('round', o.record);
    await this.hooks.published(o.record, version);
  }

  private async recover(record: RoundRecord, reason: string): Promise<void> {
    this.generation++;
    this.busy = true;
    this.kept = null;
    try {
      const failed: RoundRecord = { ...record, state: 'failed', failureReason: reason, endedAt: Date.now() };
      delete failed.committedVersion;
      this.deps.stats.roundsFailed++;
      await this.deps.store.saveRound(failed).catch(() => undefined);
      this.deps.events.emit('round', failed);
      const task = (await this.deps.store.getTask(this.task.id)) ?? this.task;
      const weights = await this.deps.registry.readWeights(await this.deps.registry.getVersion(task.modelName, task.currentVersion));
      this.task = { ...task, state: this.task.state, plan: this.task.plan };
      this.publishedStep = this.hooks.currentStep();
      this.busy = false;
      this.hooks.reset(this.task, weights);
    } catch (err) {
      this.deps.logger.error({ err, task: this.task.id }, 'async task could not reload its committed state; it admits no device until restarted');
    }
  }

  async setState(state: TaskRecord['state'], reason?: string): Promise<void> {
    await this.updateTask({ state, ...(reason ? { stateReason: reason } : {}) });
    this.deps.devices.broadcast(this.task.id, 'task:state', { taskId: this.task.id, state, ...(reason ? { reason } : {}) });
  }

  async updateTask(patch: Partial<Pick<TaskRecord, 'state' | 'stateReason' | 'plan'>>): Promise<void> {
    this.task = await this.deps.store.updateTask(this.task.id, patch);
    this.deps.events.emit('task', this.task);
  }

  dispose(): void {
    this.generation++;
  }
}

/**
 * At start-up, before an async task resumes: the steps stored after its last published step were
 * lost with the process (their effect lived only in memory); mark their records failed, walking
 * newest first down to the last published step (steps that had failed already are passed over,
 * not taken for the end). Returns the task with `nextRound` past every stored step, so no number
 * is handed out twice even where a step was stored before its number was reserved (stores written
 * before `keep` reserved first).
 */
export async function markLostSteps(store: Store, task: TaskRecord): Promise<TaskRecord> {
  let newest = 0;
  walk: for (let offset = 0; ; offset += 100) {
    const page = await store.listRounds(task.id, { limit: 100, offset });
    for (const r of page) {
      newest = Math.max(newest, r.round);
      if (r.committedVersion !== undefined) break walk;
      if (r.state === 'failed') continue;
      await store.saveRound({ ...r, state: 'failed', failureReason: `lost: the coordinator restarted before this step was published; resumed from version ${task.currentVersion}`, endedAt: r.endedAt ?? Date.now() });
    }
    if (page.length < 100) break;
  }
  return newest >= task.nextRound ? store.updateTask(task.id, { nextRound: newest + 1 }) : task;
}
