import { expect } from 'vitest';
import { scaleOf } from '@flotilla/protocol';

/**
 * The check secure-aggregation tests share: the committed model moved by the plain
 * example-weighted FedAvg mean of the survivors' deltas (each clamped to the clip range), within
 * the quantization error of protocol/src/secagg/quantize.ts: the rounding of the weighted sum
 * (n / 2s) and of the summed weight (n / 2s_w), plus float32 rounding of the new weights.
 */
export interface Contribution {
  examples: number;
  delta: ArrayLike<number>;
}

export function expectSecureFedAvg(before: Float32Array, after: Float32Array, survivors: Contribution[], q: { bits: number; clipRange: number; maxWeight: number }): number {
  const n = survivors.length;
  const f = survivors.map((d) => Math.min(1, d.examples / q.maxWeight));
  const W = f.reduce((a, b) => a + b, 0);
  const eA = n / (2 * scaleOf(q.bits, q.clipRange));
  const eW = n / (2 * scaleOf(q.bits, 1));
  let worst = 0;
  for (let i = 0; i < before.length; i++) {
    const mean = survivors.reduce((s, d, k) => s + f[k] * Math.max(-q.clipRange, Math.min(q.clipRange, d.delta[i])), 0) / W;
    const err = Math.abs(after[i] - before[i] - mean);
    expect(err).toBeLessThanOrEqual((eA + Math.abs(mean) * eW) / (W - eW) + 1e-6);
    worst = Math.max(worst, err);
  }
  return worst;
}
