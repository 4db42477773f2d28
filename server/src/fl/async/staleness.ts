import type { StalenessWeighting } from '@flotilla/protocol';

/**
 * Staleness of asynchronous reports (docs/async.md). A report's staleness s is the number of
 * model steps the server took between the step its base version was published at and the step
 * the report is folded into (FedBuff, Nguyen et al. 2022, Sec. 3). Its weight w(s) in (0, 1]
 * multiplies the delta before it is folded:
 *   constant:   w = 1
 *   polynomial: w = (1 + s)^-a                              (FedAsync, Xie et al. 2019; FedBuff a = 0.5)
 *   hinge:      w = 1 if s <= b, else 1 / (a (s - b) + 1)   (FedAsync)
 * Weights never exceed 1, so a weighted, clipped delta keeps its norm bound (DP sensitivity).
 */
export const DEFAULT_STALENESS_WEIGHTING: StalenessWeighting = { kind: 'polynomial', a: 0.5 };

export function stalenessWeight(w: StalenessWeighting, s: number): number {
  if (!(s >= 0)) throw new RangeError(`staleness must be >= 0, got ${s}`);
  switch (w.kind) {
    case 'constant':
      return 1;
    case 'polynomial':
      return Math.pow(1 + s, -w.a);
    case 'hinge':
      return s <= w.b ? 1 : 1 / (w.a * (s - w.b) + 1);
  }
}

/** Counts of reports per staleness value, as stored in a step's train metrics (`staleness.<s>`), plus mean and max. */
export function stalenessMetrics(values: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (values.length === 0) return out;
  let sum = 0;
  let max = 0;
  for (const s of values) {
    out[`staleness.${s}`] = (out[`staleness.${s}`] ?? 0) + 1;
    sum += s;
    max = Math.max(max, s);
  }
  out.stalenessMean = sum / values.length;
  out.stalenessMax = max;
  return out;
}

/** The histogram back from train metrics (see stalenessMetrics); null when the record has none (a sync round). */
export function stalenessHistogram(metrics: Record<string, number>): Record<string, number> | null {
  let h: Record<string, number> | null = null;
  for (const [k, v] of Object.entries(metrics)) {
    if (k.startsWith('staleness.')) (h ??= {})[k.slice('staleness.'.length)] = v;
  }
  return h;
}
