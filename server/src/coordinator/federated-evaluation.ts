import { effectiveMetrics } from '@flotilla/protocol';
import type { EvalReport } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { Rng } from '../fl/rng.js';
import type { EvalResult, Strategy } from '../fl/strategy.js';
import type { TaskRecord } from '../store/records.js';
import { artifactPaths } from './artifact-paths.js';
import type { CoordinatorDeps } from './deps.js';

interface Pending {
  round: number;
  version: number;
  expected: Set<string>;
  results: EvalResult[];
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Federated evaluation of each committed version (docs/architecture.md, "Life of a round", step 7): devices chosen by the
 * strategy evaluate it on their local held-out data; the weighted result is stored with the round
 * (`evalMetrics`) and added to the version's metrics as `federated_<key>`. It runs beside the next
 * round and never blocks it. At most one evaluation is open per task: a new one closes the last.
 */
export class FederatedEvaluation {
  private pending: Pending | null = null;
  /** Who was asked, and has not answered, in the last few closed evaluations (round -> devices): a late answer is told apart from an unasked one. */
  private readonly asked = new Map<number, Set<string>>();

  constructor(
    private readonly deps: CoordinatorDeps,
    private readonly task: () => TaskRecord,
    private readonly strategy: () => Strategy,
    private readonly rng: Rng,
  ) {}

  start(round: number, version: number): void {
    const t = this.task();
    if (t.plan.evalClientsPerRound <= 0) return;
    const available = this.deps.devices.eligible(t.id);
    const chosen = this.strategy().configureEvaluate(round, available, this.rng);
    if (chosen.length === 0) return;
    if (this.pending) this.finish();
    const paths = artifactPaths(t.modelName, version);
    const deadline = Date.now() + t.plan.roundDeadlineMs;
    this.pending = { round, version, expected: new Set(chosen), results: [], timer: setTimeout(() => this.finish(), t.plan.roundDeadlineMs) };
    for (const id of chosen) {
      this.deps.devices.send(id, 'eval:instruction', {
        taskId: t.id,
        round,
        modelName: t.modelName,
        modelVersion: version,
        modelUrl: paths.modelJson,
        weightsUrl: paths.weights,
        batchSize: 256,
        deadline,
        loss: t.plan.loss,
        metrics: effectiveMetrics(t.plan),
      });
    }
  }

  /**
   * An evaluation report; accepted only from a device asked to evaluate that round, once. A device
   * that was never asked for that round (or already answered) gets FL_ERR_EVAL_NOT_REQUESTED; one
   * that was asked but answers after the evaluation closed gets FL_ERR_ROUND_LATE_REPORT.
   */
  onReport(deviceId: string, r: EvalReport): void {
    const p = this.pending;
    if (p && p.round === r.round) {
      if (!p.expected.has(deviceId)) throw new AppError('FL_ERR_EVAL_NOT_REQUESTED', { round: r.round });
    } else {
      const asked = this.asked.get(r.round);
      if (asked?.has(deviceId)) throw new AppError('FL_ERR_ROUND_LATE_REPORT', { round: r.round });
      throw new AppError('FL_ERR_EVAL_NOT_REQUESTED', { round: r.round });
    }
    p.expected.delete(deviceId);
    const cap = this.task().plan.maxExamplesPerReport; // the same cap on one report's weight as fit reports
    p.results.push({ clientId: deviceId, numExamples: Math.min(r.numExamples, cap ?? r.numExamples), metrics: r.metrics });
    if (p.expected.size === 0) this.finish();
  }

  private finish(): void {
    const p = this.pending;
    if (!p) return;
    clearTimeout(p.timer);
    this.pending = null;
    if (p.expected.size > 0) this.asked.set(p.round, p.expected);
    while (this.asked.size > 4) this.asked.delete(this.asked.keys().next().value!);
    const metrics = this.strategy().aggregateEvaluate(p.round, p.results, []);
    if (Object.keys(metrics).length === 0) return;
    const t = this.task();
    void (async () => {
      const rec = await this.deps.store.getRound(t.id, p.round);
      if (rec) await this.deps.store.saveRound({ ...rec, evalMetrics: metrics });
      const fed: Record<string, number> = {};
      for (const [k, v] of Object.entries(metrics)) fed[`federated_${k}`] = v;
      await this.deps.store.addVersionMetrics(t.modelName, p.version, fed);
      this.deps.events.emit('evaluation', { taskId: t.id, round: p.round, version: p.version, metrics });
    })().catch((err) => this.deps.logger.error({ err }, 'storing federated evaluation'));
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending.timer);
  }
}
