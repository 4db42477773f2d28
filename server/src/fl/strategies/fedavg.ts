import { sample, type Rng } from '../rng.js';
import { selectionSize } from '../selection.js';
import type { AggregatorPartial, EvalResult, FitAggregator, FitFailure, FitOutcome, FitResult, Strategy } from '../strategy.js';
import { compactMetrics, weightedMetrics } from '../strategy.js';
import { WeightedMean } from '../weighted-mean.js';
import { firstOutOfRange, rangeHeadroom } from '../update-checks.js';

/**
 * FedAvg (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks from
 * Decentralized Data"): w_next = w + sum_k (n_k / n) * delta_k. Streaming: memory O(model).
 */
export interface FedAvgParams {
  clientsPerRound: number;
  overSelect: number;
  evalClientsPerRound: number;
}

export class StreamingMeanAggregator implements FitAggregator {
  readonly mean: WeightedMean;
  protected readonly metricSums: Array<{ numExamples: number; metrics: Record<string, number> }> = [];
  constructor(length: number) {
    this.mean = new WeightedMean(length);
  }
  add(r: FitResult): void {
    this.mean.add(r.delta, r.numExamples);
    this.metricSums.push({ numExamples: r.numExamples, metrics: r.metrics });
  }
  addWithin(r: FitResult, bound: number): boolean {
    if (!this.mean.addWithin(r.delta, r.numExamples, bound)) return false;
    this.metricSums.push({ numExamples: r.numExamples, metrics: r.metrics });
    return true;
  }
  get count(): number {
    return this.mean.count;
  }
  get totalExamples(): number {
    return this.mean.totalWeight;
  }
  metrics(): Record<string, number> {
    return weightedMetrics(this.metricSums);
  }
  exportPartial(): AggregatorPartial {
    return { sum: this.mean.rawSum, meta: { total: this.mean.totalWeight, n: this.mean.count, metrics: compactMetrics(this.metricSums) } };
  }
  mergePartial(p: AggregatorPartial): void {
    const m = p.meta as { total: number; n: number; metrics: Array<{ numExamples: number; metrics: Record<string, number> }> };
    if (m.n === 0) return;
    this.mean.merge(p.sum, m.total, m.n);
    this.metricSums.push(...m.metrics);
  }
}

export class FedAvg implements Strategy {
  readonly name: string = 'fedavg';
  readonly streaming = true;
  constructor(protected readonly params: FedAvgParams) {}

  configureFit(_round: number, available: readonly string[], rng: Rng): string[] {
    return sample(available, selectionSize(this.params.clientsPerRound, this.params.overSelect), rng);
  }

  beginFit(_round: number, modelLength: number): StreamingMeanAggregator {
    return new StreamingMeanAggregator(modelLength);
  }

  /**
   * The server update applied to the averaged delta; FedAvg applies it as is. With `commit` false
   * it computes the step from the current state without advancing that state (a preview).
   */
  protected serverUpdate(meanDelta: Float32Array, _global: Float32Array, _commit = true): Float32Array {
    return meanDelta;
  }

  /**
   * The report's delta through this strategy's server step, taken alone. For affine steps (FedAvg,
   * FedProx, FedAvgM, norm-bounded) the round's new weights are a convex combination of these
   * previews, so when each is in range the aggregate is too; for the adaptive FedOpt steps it is a
   * per-report check only.
   */
  previewOutOfRange(delta: Float32Array, global: Float32Array): number {
    return firstOutOfRange(global, this.serverUpdate(delta, global, false));
  }

  /** FedAvg's step is the delta itself: the headroom of `global` (FLOAT32_MAX - max|global|). Strategies with another server step override it. */
  previewHeadroom(global: Float32Array): number {
    return rangeHeadroom(global);
  }

  aggregateFit(_round: number, aggregator: FitAggregator, _failures: readonly FitFailure[], global: Float32Array): FitOutcome {
    const agg = aggregator as StreamingMeanAggregator;
    if (agg.count === 0) throw new RangeError('no results to aggregate');
    const step = this.serverUpdate(agg.mean.mean(), global);
    const weights = new Float32Array(global.length);
    for (let i = 0; i < weights.length; i++) weights[i] = global[i] + step[i];
    return { weights, metrics: { ...agg.metrics(), participants: agg.count, examples: agg.totalExamples } };
  }

  configureEvaluate(_round: number, available: readonly string[], rng: Rng): string[] {
    return sample(available, this.params.evalClientsPerRound, rng);
  }

  aggregateEvaluate(_round: number, results: readonly EvalResult[], _failures: readonly FitFailure[]): Record<string, number> {
    if (results.length === 0) return {};
    return { ...weightedMetrics(results), evalParticipants: results.length };
  }
}
