import { z } from 'zod';
import type { FitResult } from '../strategy.js';
import { BufferedStrategy, forEachColumn } from './buffered-strategy.js';
import type { FedAvgParams } from './fedavg.js';

/**
 * Coordinate-wise trimmed mean (Yin et al. 2018, "Byzantine-Robust Distributed Learning: Towards
 * Optimal Statistical Rates"): per coordinate, drop the floor(beta * m) largest and smallest of
 * the m values and average the rest, unweighted. beta in [0, 0.5); beta = 0 is the plain mean.
 * Not streaming: keeps every update of the round (bounded by maxUpdates).
 */
export const FedTrimmedAvgParamsSchema = z
  .object({ beta: z.number().min(0).lt(0.5).default(0.2), maxUpdates: z.number().int().min(1).optional() })
  .strict();

export class FedTrimmedAvg extends BufferedStrategy {
  readonly name: string = 'fedtrimmedavg';

  constructor(
    params: FedAvgParams,
    maxUpdates: number,
    readonly beta: number,
  ) {
    super(params, maxUpdates);
  }

  protected combine(results: readonly FitResult[]): { update: Float32Array; metrics: Record<string, number> } {
    const deltas = results.map((r) => r.delta);
    const m = deltas.length;
    const cut = Math.floor(this.beta * m);
    const kept = m - 2 * cut; // >= 1 since beta < 0.5
    const update = new Float32Array(deltas[0].length);
    forEachColumn(deltas, (col, j) => {
      col.sort();
      let s = 0;
      for (let i = cut; i < m - cut; i++) s += col[i];
      update[j] = s / kept;
    });
    return { update, metrics: { trimmedPerSide: cut } };
  }
}
