import { z } from 'zod';
import type { ClientPlan } from '@flotilla/protocol';
import type { FitAggregator, FitFailure, FitOutcome } from '../strategy.js';
import { StreamingMeanAggregator, type FedAvgParams } from './fedavg.js';
import { PopulationAware, PopulationParam } from './population.js';
import { vectorFromBase64, vectorToBase64 } from './vector-state.js';
import { firstOutOfRange, l2Norm } from '../update-checks.js';

/**
 * FedDyn (Acar et al. 2021, "Federated Learning Based on Dynamic Regularization", Algorithm 1).
 * Device k keeps h_k, the gradient of its loss at its last local model (0 at first), minimises
 *   L_k(w) - <h_k, w> + (alpha / 2) ||w - x||^2
 * and then sets h_k <- h_k - alpha (w_k - x). The server keeps h, the running mean of every h_k:
 *   h <- h - alpha (|P| / N) D        (D: example-weighted mean of the model deltas w_k - x)
 *   x <- x + D - h / alpha
 * (the paper's x = mean_k(w_k) - h / alpha). Streaming: the mean is a running sum (memory
 * O(model) plus h); nothing per report is kept. The upload is the model delta only; each device
 * keeps h_k (4 bytes per trainable weight) in its device-state store.
 */
export const FedDynParamsSchema = z
  .object({
    alpha: z.number().positive().max(100).default(0.01),
    populationSize: PopulationParam,
  })
  .strict();
export type FedDynOptions = z.infer<typeof FedDynParamsSchema>;

export class FedDyn extends PopulationAware {
  override readonly name: string = 'feddyn';
  private h: Float32Array | undefined;

  constructor(params: FedAvgParams, private readonly opts: FedDynOptions) {
    super(params, opts.populationSize);
  }

  configureClientPlan(_round: number, plan: ClientPlan): ClientPlan {
    return { ...plan, driftCorrection: { kind: 'feddyn', alpha: this.opts.alpha } };
  }

  /** The step x_new - x for mean delta D over `participants` reports; with commit false, h is left as it was. */
  private step(meanDelta: Float32Array, participants: number, commit: boolean): Float32Array {
    const n = meanDelta.length;
    const current = this.h && this.h.length === n ? this.h : new Float32Array(n);
    const h = commit ? current : Float32Array.from(current);
    const alpha = this.opts.alpha;
    const share = participants / this.population.size(participants);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      h[i] -= alpha * share * meanDelta[i];
      out[i] = meanDelta[i] - h[i] / alpha;
    }
    if (commit) this.h = h;
    return out;
  }

  override previewOutOfRange(delta: Float32Array, global: Float32Array): number {
    return firstOutOfRange(global, this.step(delta, 1, false));
  }

  override aggregateFit(_round: number, aggregator: FitAggregator, _failures: readonly FitFailure[], global: Float32Array): FitOutcome {
    const agg = aggregator as StreamingMeanAggregator;
    if (agg.count === 0) throw new RangeError('no results to aggregate');
    const step = this.step(agg.mean.mean(), agg.count, true);
    const weights = new Float32Array(global.length);
    for (let i = 0; i < weights.length; i++) weights[i] = global[i] + step[i];
    return { weights, metrics: { ...agg.metrics(), participants: agg.count, examples: agg.totalExamples, feddynStateNorm: l2Norm(this.h!) } };
  }

  exportState(): unknown {
    return { version: 1, h: this.h ? vectorToBase64(this.h) : null };
  }

  importState(state: unknown): void {
    const s = state as { version?: unknown; h?: unknown } | null;
    if (!s || s.version !== 1) throw new RangeError('feddyn state: unknown version');
    this.h = s.h === null ? undefined : vectorFromBase64(s.h);
  }
}
