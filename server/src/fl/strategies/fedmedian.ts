import type { FitResult } from '../strategy.js';
import { BufferedStrategy, forEachColumn } from './buffered-strategy.js';

/**
 * Coordinate-wise median (Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards
 * Optimal Statistical Rates"): update_j = median_i(delta_i[j]), unweighted; for an even count the
 * mean of the two middle values. Tolerates up to half the updates being arbitrary per coordinate.
 * Not streaming: keeps every update of the round (bounded by maxUpdates, see BufferedAggregator).
 */
export class FedMedian extends BufferedStrategy {
  readonly name: string = 'fedmedian';

  protected combine(results: readonly FitResult[]): { update: Float32Array; metrics: Record<string, number> } {
    const deltas = results.map((r) => r.delta);
    const m = deltas.length;
    const update = new Float32Array(deltas[0].length);
    const lo = (m - 1) >> 1;
    const hi = m >> 1;
    forEachColumn(deltas, (col, j) => {
      col.sort();
      update[j] = (col[lo] + col[hi]) / 2;
    });
    return { update, metrics: {} };
  }
}
