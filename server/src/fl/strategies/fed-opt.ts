import { FedAvg, type FedAvgParams } from './fedavg.js';
import { vectorFromBase64, vectorToBase64 } from './vector-state.js';
import { z } from 'zod';

/**
 * The FedOpt family (Reddi et al. 2020, "Adaptive Federated Optimization", Algorithm 2): the
 * weighted mean delta D is a pseudo-gradient for a server-side adaptive optimizer:
 *   m <- beta1 * m + (1 - beta1) * D
 *   v <- secondMoment(v, D)            (FedAdagrad, FedAdam, FedYogi differ only here)
 *   x <- x + eta * m / (sqrt(v) + tau)
 * m starts at 0 and v at tau^2 (the paper's v_{-1} >= tau^2); no bias correction, as in the
 * paper. Streaming: memory O(model) for the mean, plus m and v.
 */
export const FedOptParamsSchema = (defaults: { eta: number; tau: number }) =>
  z
    .object({
      eta: z.number().positive().max(100).default(defaults.eta),
      beta1: z.number().min(0).lt(1).default(0.9),
      beta2: z.number().min(0).lt(1).default(0.99),
      tau: z.number().positive().max(1).default(defaults.tau),
    })
    .strict();
export interface FedOptOptions {
  eta: number;
  beta1: number;
  beta2: number;
  tau: number;
}

export abstract class FedOpt extends FedAvg {
  private m: Float32Array | undefined;
  private v: Float32Array | undefined;

  constructor(
    params: FedAvgParams,
    protected readonly opts: FedOptOptions,
  ) {
    super(params);
  }

  /** The adaptive step is not the delta itself: no cheap bound, every report gets the exact preview. */
  override previewHeadroom(): number {
    return 0;
  }

  /** The variant's second-moment update for one coordinate: v_new from v and d = D_i. */
  protected abstract secondMoment(v: number, d: number): number;

  protected override serverUpdate(meanDelta: Float32Array, global: Float32Array, commit = true): Float32Array {
    const n = global.length;
    let m = this.m ?? new Float32Array(n);
    let v = this.v ?? new Float32Array(n).fill(this.opts.tau * this.opts.tau);
    if (m.length !== n) throw new RangeError(`optimizer state length ${m.length} != model ${n}`);
    // A preview updates scratch copies of the moments, leaving the state as it was.
    if (commit) {
      this.m = m;
      this.v = v;
    } else {
      m = Float32Array.from(m);
      v = Float32Array.from(v);
    }
    const { beta1, eta, tau } = this.opts;
    const step = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const d = meanDelta[i];
      m[i] = beta1 * m[i] + (1 - beta1) * d;
      v[i] = this.secondMoment(v[i], d);
      step[i] = (eta * m[i]) / (Math.sqrt(v[i]) + tau);
    }
    return step;
  }

  exportState(): unknown {
    return { version: 1, m: this.m ? vectorToBase64(this.m) : null, v: this.v ? vectorToBase64(this.v) : null };
  }

  importState(state: unknown): void {
    const s = state as { version?: unknown; m?: unknown; v?: unknown } | null;
    if (!s || s.version !== 1) throw new RangeError(`${this.name} state: unknown version`);
    if (s.m === null || s.v === null) {
      this.m = this.v = undefined;
      return;
    }
    const m = vectorFromBase64(s.m);
    this.v = vectorFromBase64(s.v, m.length);
    this.m = m;
  }
}
