import { z } from 'zod';
import { FedAvg, type FedAvgParams } from './fedavg.js';
import { vectorFromBase64, vectorToBase64 } from './vector-state.js';

/**
 * FedAvgM: FedAvg with server momentum (Hsu, Qi & Brown 2019, "Measuring the Effects of
 * Non-Identical Data Distribution for Federated Visual Classification").
 *   D = weighted mean of client deltas;  v <- beta * v + D;  x <- x + eta * v
 * (Flower's form with pseudo-gradient -D.) v starts at 0, so the first round is x + eta * D.
 * Streaming: memory O(model) for the mean, plus v.
 */
export const FedAvgMParamsSchema = z
  .object({
    serverLearningRate: z.number().positive().max(100).default(1),
    serverMomentum: z.number().min(0).lt(1).default(0.9),
  })
  .strict();
export type FedAvgMOptions = z.infer<typeof FedAvgMParamsSchema>;

export class FedAvgM extends FedAvg {
  override readonly name: string = 'fedavgm';
  private velocity: Float32Array | undefined;

  constructor(params: FedAvgParams, private readonly opts: FedAvgMOptions) {
    super(params);
  }

  protected override serverUpdate(meanDelta: Float32Array, global: Float32Array, commit = true): Float32Array {
    const current = this.velocity ?? new Float32Array(global.length);
    if (current.length !== global.length) throw new RangeError(`momentum length ${current.length} != model ${global.length}`);
    // A preview writes the new velocity into a scratch copy, leaving the state as it was.
    const v = commit ? current : Float32Array.from(current);
    if (commit) this.velocity = v;
    const { serverMomentum: beta, serverLearningRate: eta } = this.opts;
    const step = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      v[i] = beta * v[i] + meanDelta[i];
      step[i] = eta * v[i];
    }
    return step;
  }

  /** The momentum step is not the delta itself: no cheap bound, every report gets the exact preview. */
  override previewHeadroom(): number {
    return 0;
  }

  exportState(): unknown {
    return { version: 1, velocity: this.velocity ? vectorToBase64(this.velocity) : null };
  }

  importState(state: unknown): void {
    const s = state as { version?: unknown; velocity?: unknown } | null;
    if (!s || s.version !== 1) throw new RangeError('fedavgm state: unknown version');
    this.velocity = s.velocity === null ? undefined : vectorFromBase64(s.velocity);
  }
}
