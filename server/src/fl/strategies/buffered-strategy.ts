import type { Rng } from '../rng.js';
import type { EvalResult, FitAggregator, FitFailure, FitOutcome, FitResult, Strategy } from '../strategy.js';
import { weightedMetrics } from '../strategy.js';
import { FedAvg, type FedAvgParams } from './fedavg.js';

/**
 * Keeps every update of a round, for strategies that need all of them at once (median, trimmed
 * mean, Krum). Memory is bounded by `cap` updates: cap * 4 * modelLength bytes. The factory sets
 * cap >= the round's selection size, so a coordinator that only accepts reports from selected
 * devices never exceeds it; `add` beyond the cap is a caller bug and throws RangeError.
 */
export class BufferedAggregator implements FitAggregator {
  readonly results: FitResult[] = [];
  private examples = 0;

  constructor(
    readonly length: number,
    readonly cap: number,
  ) {}

  add(r: FitResult): void {
    if (r.delta.length !== this.length) throw new RangeError(`update length ${r.delta.length} != ${this.length}`);
    if (!(r.numExamples > 0) || !Number.isFinite(r.numExamples)) throw new RangeError('numExamples must be positive and finite');
    if (this.results.length >= this.cap) throw new RangeError(`more than maxUpdates=${this.cap} updates in one round`);
    this.results.push(r);
    this.examples += r.numExamples;
  }

  get count(): number {
    return this.results.length;
  }

  get totalExamples(): number {
    return this.examples;
  }
}

/**
 * Base of the non-streaming (robust) strategies: selection and evaluation as FedAvg; the round's
 * aggregate is `combine(results)`, added to the global weights. Not streaming.
 */
export abstract class BufferedStrategy implements Strategy {
  abstract readonly name: string;
  readonly streaming = false;
  private readonly plain: FedAvg;

  constructor(
    params: FedAvgParams,
    readonly maxUpdates: number,
  ) {
    this.plain = new FedAvg(params);
  }

  /** The aggregate update from every kept result (at least one) plus diagnostics. Must not mutate the deltas' meaning for later reads. */
  protected abstract combine(results: readonly FitResult[]): { update: Float32Array; metrics: Record<string, number> };

  configureFit(round: number, available: readonly string[], rng: Rng): string[] {
    return this.plain.configureFit(round, available, rng);
  }

  beginFit(_round: number, modelLength: number): BufferedAggregator {
    return new BufferedAggregator(modelLength, this.maxUpdates);
  }

  aggregateFit(_round: number, aggregator: FitAggregator, _failures: readonly FitFailure[], global: Float32Array): FitOutcome {
    const agg = aggregator as BufferedAggregator;
    if (agg.count === 0) throw new RangeError('no results to aggregate');
    if (agg.length !== global.length) throw new RangeError(`update length ${agg.length} != model ${global.length}`);
    const { update, metrics } = this.combine(agg.results);
    const weights = new Float32Array(global.length);
    for (let i = 0; i < weights.length; i++) weights[i] = global[i] + update[i];
    return { weights, metrics: { ...weightedMetrics(agg.results), ...metrics, participants: agg.count, examples: agg.totalExamples } };
  }

  configureEvaluate(round: number, available: readonly string[], rng: Rng): string[] {
    return this.plain.configureEvaluate(round, available, rng);
  }

  aggregateEvaluate(round: number, results: readonly EvalResult[], failures: readonly FitFailure[]): Record<string, number> {
    return this.plain.aggregateEvaluate(round, results, failures);
  }
}

/** Calls fn(column, j) for each coordinate j with the m updates' values at j, in a reused buffer. */
export function forEachColumn(deltas: readonly Float32Array[], fn: (column: Float64Array, j: number) => void): void {
  const m = deltas.length;
  const col = new Float64Array(m);
  const n = deltas[0].length;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) col[i] = deltas[i][j];
    fn(col, j);
  }
}
