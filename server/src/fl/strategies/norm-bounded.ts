import { z } from 'zod';
import { clipInPlace } from '../dp/clip.js';
import { withinBound } from '../fold-kernel.js';
import type { AggregatorPartial, FitAggregator, FitFailure, FitOutcome, FitResult } from '../strategy.js';
import { FedAvg, StreamingMeanAggregator, type FedAvgParams } from './fedavg.js';

/**
 * Norm-bounded averaging (Sun et al. 2019, "Can You Really Backdoor Federated Learning?"): every
 * update is clipped to L2 norm `maxNorm` before the weighted FedAvg mean, so no single device can
 * move the model by more than its share of maxNorm. Streaming: memory O(model).
 */
export const NormBoundedParamsSchema = z.object({ maxNorm: z.number().positive() }).strict();

export class ClippingMeanAggregator extends StreamingMeanAggregator {
  clippedCount = 0;
  constructor(
    length: number,
    private readonly bound: number,
  ) {
    super(length);
  }
  override add(r: FitResult): void {
    if (r.delta.length === this.mean.length && clipInPlace(r.delta, this.bound).clipped) this.clippedCount++;
    super.add(r);
  }
  /** Clipping needs the delta's norm first, so the check is its own pass here (on the delta as received). */
  override addWithin(r: FitResult, bound: number): boolean {
    if (!withinBound(r.delta, bound)) return false;
    this.add(r);
    return true;
  }
  override exportPartial(): AggregatorPartial {
    const p = super.exportPartial();
    return { sum: p.sum, meta: { ...p.meta, clipped: this.clippedCount } };
  }
  override mergePartial(p: AggregatorPartial): void {
    super.mergePartial(p);
    this.clippedCount += Number(p.meta.clipped ?? 0);
  }
}

export class NormBounded extends FedAvg {
  override readonly name: string = 'normbounded';

  constructor(
    params: FedAvgParams,
    readonly maxNorm: number,
  ) {
    super(params);
  }

  override beginFit(_round: number, modelLength: number): ClippingMeanAggregator {
    return new ClippingMeanAggregator(modelLength, this.maxNorm);
  }

  /** The delta is clipped before it counts, so it is previewed clipped (clipping only shrinks values, so FedAvg's headroom holds too). */
  override previewOutOfRange(delta: Float32Array, global: Float32Array): number {
    const clipped = Float32Array.from(delta);
    clipInPlace(clipped, this.maxNorm);
    return super.previewOutOfRange(clipped, global);
  }

  override aggregateFit(round: number, aggregator: FitAggregator, failures: readonly FitFailure[], global: Float32Array): FitOutcome {
    const out = super.aggregateFit(round, aggregator, failures, global);
    return { ...out, metrics: { ...out.metrics, normClipped: (aggregator as ClippingMeanAggregator).clippedCount } };
  }
}
