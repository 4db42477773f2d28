import type { ClientPlan } from '@flotilla/protocol';
import type { Rng } from './rng.js';

/**
 * Aggregation strategies, Flower-style, with no I/O. The coordinator calls, per round:
 *   configureFit -> (devices train) -> beginFit; fold each accepted result with `add` as it
 *   arrives -> aggregateFit once the round closes -> (commit) -> configureEvaluate ->
 *   aggregateEvaluate.
 * Contracts every strategy must keep (the shared suite in test/fl checks them):
 *   - aggregateFit returns new global weights of the same length as `global` and never mutates it;
 *   - equal updates from every client give `global + update` for plain averaging strategies;
 *   - the same seed and inputs give the same output;
 *   - failures do not throw; aggregateFit with no results throws RangeError.
 * Streaming strategies fold each update and drop it (memory O(model)); strategies that need every
 * update (median, Krum) must say so and bound what they keep.
 */
export interface FitResult {
  clientId: string;
  numExamples: number;
  /** The client's delta: w_local - w_global. Owned by the aggregator once passed in. */
  delta: Float32Array;
  metrics: Record<string, number>;
  /** SCAFFOLD: the device's control variate delta c_i+ - c_i (same length as delta); absent for other strategies. */
  control?: Float32Array;
}

export interface FitFailure {
  clientId: string;
  reason: string;
}

export interface EvalResult {
  clientId: string;
  numExamples: number;
  metrics: Record<string, number>;
}

/**
 * A running aggregate as it leaves one node (hierarchical aggregation, docs/cluster.md): the
 * float64 running sum plus small JSON-serialisable counters. O(model), whatever the reports.
 */
export interface AggregatorPartial {
  sum: Float64Array;
  meta: Record<string, unknown>;
}

export interface FitAggregator {
  /** Throws RangeError on a result it cannot fold (wrong length, missing control when it requires one). */
  add(result: FitResult): void;
  /** True when every result must carry `control` (SCAFFOLD); the coordinator refuses reports without one before `add`. */
  readonly requiresControl?: boolean;
  /**
   * Add `result` only if every value of its delta is finite with |value| <= the float32 whose
   * bits are `bound` (fold-kernel.ts, `boundBits`); otherwise return false with nothing changed.
   * Lets the coordinator check and fold a report in one pass; absent, it checks first, then adds.
   */
  addWithin?(result: FitResult, bound: number): boolean;
  readonly count: number;
  readonly totalExamples: number;
  /**
   * Mergeable aggregators (the weighted-sum family) export what they folded and merge another
   * node's export. Contract: merging the partials of any split of the results equals adding all
   * the results to one aggregator (up to float64 summation order). Absent: not mergeable, so the
   * strategy is refused in cluster mode.
   */
  exportPartial?(): AggregatorPartial;
  mergePartial?(p: AggregatorPartial): void;
}

type MetricRecords = ReadonlyArray<{ numExamples: number; metrics: Record<string, number> }>;

/** Per metric key: the example-weighted sum of its values and the examples that carried it. */
function metricSums(results: MetricRecords): { sums: Record<string, number>; weights: Record<string, number> } {
  const sums: Record<string, number> = {};
  const weights: Record<string, number> = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r.metrics)) {
      sums[k] = (sums[k] ?? 0) + v * r.numExamples;
      weights[k] = (weights[k] ?? 0) + r.numExamples;
    }
  }
  return { sums, weights };
}

/** Metric records folded to one record per key: weightedMetrics of the result equals that of the input. */
export function compactMetrics(results: MetricRecords): Array<{ numExamples: number; metrics: Record<string, number> }> {
  const { sums, weights } = metricSums(results);
  return Object.keys(sums).map((k) => ({ numExamples: weights[k], metrics: { [k]: sums[k] / weights[k] } }));
}

export interface FitOutcome {
  /** New global weights. */
  weights: Float32Array;
  /** Aggregated training metrics (weighted by examples) plus strategy diagnostics. */
  metrics: Record<string, number>;
}

export interface Strategy {
  readonly name: string;
  /** True when memory stays O(model) regardless of the number of results. */
  readonly streaming: boolean;
  /** Devices to train this round, from those available. */
  configureFit(round: number, available: readonly string[], rng: Rng): string[];
  beginFit(round: number, modelLength: number): FitAggregator;
  aggregateFit(round: number, aggregator: FitAggregator, failures: readonly FitFailure[], global: Float32Array): FitOutcome;
  /** Devices to evaluate the committed version; empty for none. */
  configureEvaluate(round: number, available: readonly string[], rng: Rng): string[];
  aggregateEvaluate(round: number, results: readonly EvalResult[], failures: readonly FitFailure[]): Record<string, number>;
  /** Adjust the plan devices receive this round (e.g. the DP clip norm for client-side clipping). */
  configureClientPlan?(round: number, plan: ClientPlan): ClientPlan;
  /**
   * Index of the first coordinate where the new weights would leave float32 range if `delta` were
   * the round's only update, or -1. Checked for every report before it is folded (the report is
   * refused otherwise). Strategies with a server step other than the plain mean implement it from
   * their current state without changing it; absent, the coordinator checks `global + delta`.
   */
  previewOutOfRange?(delta: Float32Array, global: Float32Array): number;
  /**
   * SCAFFOLD: the server control variate c (trainable-vector length) to send with this round's
   * instructions; absent or null for strategies without one. Read-only: must not change state.
   */
  serverControl?(modelLength: number): Float32Array | null;
  /**
   * A bound b >= 0 such that every delta whose values all lie in [-b, b] passes
   * `previewOutOfRange` against `global` (returns -1); 0 when the strategy knows none. Lets the
   * report path check finiteness and range in one pass (update-checks.ts, `withinMagnitude`).
   * Strategies that implement `previewOutOfRange` without this get the exact check on every report.
   */
  previewHeadroom?(global: Float32Array): number;
  /** Server-optimizer state for resume (momentum, moments); JSON-serialisable. */
  exportState?(): unknown;
  importState?(state: unknown): void;
}

/** Weighted mean of metrics over results, by numExamples. Keys missing on some results are averaged over those that have them. */
export function weightedMetrics(results: MetricRecords): Record<string, number> {
  const { sums, weights } = metricSums(results);
  const out: Record<string, number> = {};
  for (const k of Object.keys(sums)) out[k] = sums[k] / weights[k];
  return out;
}
