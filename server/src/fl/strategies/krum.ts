import { z } from 'zod';
import type { FitResult } from '../strategy.js';
import { BufferedStrategy } from './buffered-strategy.js';
import type { FedAvgParams } from './fedavg.js';

/**
 * Krum and Multi-Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine
 * Tolerant Gradient Descent"). With n updates and at most f Byzantine ones, each update's score
 * is the sum of squared L2 distances to its n - f - 2 nearest other updates; Krum takes the update
 * with the lowest score, Multi-Krum the unweighted mean of the `keep` lowest-scoring ones
 * (default n - f). Ties go to the earlier-added update. The guarantee needs n > 2f + 2: the
 * factory checks this against clientsPerRound; when dropouts leave fewer, at least one neighbour
 * is used and the `krumDegraded` metric is 1. Cost O(n^2 * model); not streaming (maxUpdates).
 */
export const KrumParamsSchema = z
  .object({
    byzantine: z.number().int().min(0).default(0),
    keep: z.number().int().min(1).optional(),
    maxUpdates: z.number().int().min(1).optional(),
  })
  .strict();

/** Squared L2 distance, accumulated in float64. */
function sqDist(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

/** Krum scores of the deltas for f assumed Byzantine; also whether n was too small for the guarantee. */
export function krumScores(deltas: readonly Float32Array[], f: number): { scores: number[]; degraded: boolean } {
  const n = deltas.length;
  const dist: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = sqDist(deltas[i], deltas[j]);
      dist[i][j] = d;
      dist[j][i] = d;
    }
  }
  const neighbours = Math.min(n - 1, Math.max(1, n - f - 2));
  const scores = dist.map((row, i) => {
    const others = row.filter((_, j) => j !== i).sort((a, b) => a - b);
    let s = 0;
    for (let k = 0; k < neighbours && k < others.length; k++) s += others[k];
    return s;
  });
  return { scores, degraded: n <= 2 * f + 2 };
}

export class Krum extends BufferedStrategy {
  readonly name: string;

  constructor(
    params: FedAvgParams,
    maxUpdates: number,
    readonly byzantine: number,
    /** Updates averaged: 1 for Krum; undefined means n - f (Multi-Krum's default). */
    readonly keep: number | undefined,
    name = 'krum',
  ) {
    super(params, maxUpdates);
    this.name = name;
  }

  protected combine(results: readonly FitResult[]): { update: Float32Array; metrics: Record<string, number> } {
    const deltas = results.map((r) => r.delta);
    const n = deltas.length;
    const { scores, degraded } = krumScores(deltas, this.byzantine);
    const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const keep = Math.min(n, this.keep ?? Math.max(1, n - this.byzantine));
    const chosen = order.slice(0, keep).map(([, i]) => i);
    const update = new Float32Array(deltas[0].length);
    const sum = new Float64Array(update.length);
    for (const i of chosen) {
      const d = deltas[i];
      for (let j = 0; j < d.length; j++) sum[j] += d[j];
    }
    for (let j = 0; j < update.length; j++) update[j] = sum[j] / keep;
    return { update, metrics: { krumSelected: keep, krumDegraded: degraded ? 1 : 0 } };
  }
}
