import { z } from 'zod';
import type { ClientPlan } from '@flotilla/protocol';
import type { FitAggregator, FitFailure, FitOutcome, FitResult } from '../strategy.js';
import { StreamingMeanAggregator, type FedAvgParams } from './fedavg.js';
import { PopulationAware, PopulationParam } from './population.js';
import { vectorFromBase64, vectorToBase64 } from './vector-state.js';
import { l2Norm } from '../update-checks.js';

/**
 * SCAFFOLD (Karimireddy et al. 2020, "SCAFFOLD: Stochastic Controlled Averaging for Federated
 * Learning", Algorithm 1 with option II). The server keeps a control variate c (an estimate of the
 * global gradient) and sends it with every fit instruction; device i, holding its own c_i, takes
 * K local SGD steps on g_i(y) - c_i + c, then sets c_i+ = c_i - c + (x - y) / (K lr) and reports
 * the model delta y - x and the control delta c_i+ - c_i. The server steps
 *   x <- x + eta_g * D                  (D: example-weighted mean of model deltas, as FedAvg)
 *   c <- c + (|S| / N) * mean_i(dc_i)   (unweighted: c is the plain mean of every c_i)
 * Streaming: both means are running sums (memory O(model) for each, plus c); nothing per report is
 * kept. The upload doubles (the control delta is as long as the model delta) and each device keeps
 * c_i (4 bytes per trainable weight) in its device-state store.
 */
export const ScaffoldParamsSchema = z
  .object({
    serverLearningRate: z.number().positive().max(100).default(1),
    populationSize: PopulationParam,
  })
  .strict();
export type ScaffoldOptions = z.infer<typeof ScaffoldParamsSchema>;

/** FedAvg's running mean of the model deltas plus an unweighted running sum of the control deltas. */
export class ControlMeanAggregator extends StreamingMeanAggregator {
  readonly requiresControl = true;
  readonly controlSum: Float64Array;
  constructor(length: number) {
    super(length);
    this.controlSum = new Float64Array(length);
  }
  override add(r: FitResult): void {
    const c = r.control;
    if (!c) throw new RangeError('scaffold needs the control variate delta with every result');
    if (c.length !== this.controlSum.length) throw new RangeError(`control length ${c.length} != ${this.controlSum.length}`);
    super.add(r); // checks the delta and the weight first, so a bad result leaves both sums alone
    const s = this.controlSum;
    for (let i = 0; i < s.length; i++) s[i] += c[i];
  }
}

export class Scaffold extends PopulationAware {
  override readonly name: string = 'scaffold';
  private c: Float32Array | undefined;

  constructor(params: FedAvgParams, private readonly opts: ScaffoldOptions) {
    super(params, opts.populationSize);
  }

  configureClientPlan(_round: number, plan: ClientPlan): ClientPlan {
    return { ...plan, driftCorrection: { kind: 'scaffold' } };
  }

  serverControl(modelLength: number): Float32Array {
    if (this.c && this.c.length !== modelLength) throw new RangeError(`control variate length ${this.c.length} != model ${modelLength}`);
    return this.c ?? new Float32Array(modelLength);
  }

  override beginFit(_round: number, modelLength: number): ControlMeanAggregator {
    return new ControlMeanAggregator(modelLength);
  }

  protected override serverUpdate(meanDelta: Float32Array): Float32Array {
    const eta = this.opts.serverLearningRate;
    if (eta === 1) return meanDelta;
    const step = new Float32Array(meanDelta.length);
    for (let i = 0; i < step.length; i++) step[i] = eta * meanDelta[i];
    return step;
  }

  override aggregateFit(round: number, aggregator: FitAggregator, failures: readonly FitFailure[], global: Float32Array): FitOutcome {
    const agg = aggregator as ControlMeanAggregator;
    const out = super.aggregateFit(round, agg, failures, global);
    const n = global.length;
    const c = this.c && this.c.length === n ? this.c : new Float32Array(n);
    const scale = 1 / this.population.size(agg.count); // (|S| / N) * (1 / |S|)
    for (let i = 0; i < n; i++) c[i] += scale * agg.controlSum[i];
    this.c = c;
    return { weights: out.weights, metrics: { ...out.metrics, controlNorm: l2Norm(c) } };
  }

  exportState(): unknown {
    return { version: 1, c: this.c ? vectorToBase64(this.c) : null };
  }

  importState(state: unknown): void {
    const s = state as { version?: unknown; c?: unknown } | null;
    if (!s || s.version !== 1) throw new RangeError('scaffold state: unknown version');
    this.c = s.c === null ? undefined : vectorFromBase64(s.c);
  }
}
