import type { ClientPlan } from '@flotilla/protocol';
import { z } from 'zod';
import { gaussian, type Rng } from '../rng.js';
import type { AggregatorPartial, EvalResult, FitAggregator, FitFailure, FitOutcome, FitResult, Strategy } from '../strategy.js';
import { compactMetrics, weightedMetrics } from '../strategy.js';
import { nextClipNorm, updateNoiseMultiplier, type AdaptiveClipOptions } from './adaptive-clip.js';
import { clipInPlace } from './clip.js';
import { addGaussianNoise, noiseRng } from './noise.js';
import { RdpAccountant } from './rdp-accountant.js';

/**
 * DP-FedAvg (McMahan, Ramage, Talwar & Zhang 2018, "Learning Differentially Private Recurrent
 * Language Models"), as a wrapper around a streaming strategy (`inner`: fedavg by default, or
 * fedavgm / fedprox / fedadam / fedyogi / fedadagrad, which then post-process the private mean).
 *
 * Per round, with clip norm S, noise multiplier z and expected participants E:
 *   every update is clipped to L2 norm S (clipping 'server': here; 'client': devices clip and the
 *   server re-clips, which is a no-op for compliant devices and is counted in dpServerClipped);
 *   D = (sum of clipped updates) / E + N(0, (z S / E)^2) per coordinate, unweighted, with the fixed
 *   denominator E (so one device moves D by at most S / E whatever the turnout);
 *   the inner strategy then steps from the global weights with D as the only "update".
 * Adaptive clipping (Andrew et al. 2021, see adaptive-clip.ts) moves S toward a quantile of the
 * update norms; in 'client' mode devices report the bit as metric `dpNormBelowClip` (0 or 1).
 * Accounting: each aggregate is one step of the Poisson-subsampled Gaussian mechanism with
 * noise multiplier z and rate q = E / populationSize when populationSize is given, otherwise
 * selected / available from configureFit (selection without replacement is treated as Poisson
 * sampling, the usual approximation); the RDP total gives dpEpsilon at targetDelta in the round's
 * metrics (omitted when z = 0: no privacy). Training metrics (loss etc.) are passed through
 * unnoised and are not covered by the guarantee.
 * Streaming: memory O(model).
 */
export const DpFedAvgParamsSchema = z
  .object({
    noiseMultiplier: z.number().min(0).max(1000),
    clipNorm: z.number().positive(),
    clipping: z.enum(['server', 'client']).default('server'),
    expectedClients: z.number().int().min(1).optional(),
    adaptive: z
      .object({
        targetQuantile: z.number().min(0).max(1).default(0.5),
        learningRate: z.number().positive().max(10).default(0.2),
        clippedCountStddev: z.number().positive().optional(),
      })
      .strict()
      .optional(),
    targetDelta: z.number().gt(0).lt(1).default(1e-5),
    populationSize: z.number().int().min(1).optional(),
    /** Reproducible noise for experiments only: a seeded run is not private. */
    seed: z.number().int().optional(),
    inner: z.string().min(1).default('fedavg'),
    innerParams: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export interface DpFedAvgOptions {
  noiseMultiplier: number;
  clipNorm: number;
  clipping: 'server' | 'client';
  expectedClients: number;
  adaptive?: AdaptiveClipOptions;
  targetDelta: number;
  populationSize?: number;
  seed?: number;
}

/** Sums clipped updates unweighted in float64; counts unclipped bits for adaptive clipping. */
export class DpAggregator implements FitAggregator {
  readonly sum: Float64Array;
  unclipped = 0;
  serverClipped = 0;
  private examples = 0;
  /** Results folded here plus those merged from other nodes' partials. */
  private n = 0;
  readonly records: Array<{ numExamples: number; metrics: Record<string, number> }> = [];

  constructor(
    readonly length: number,
    readonly clip: number,
    private readonly mode: 'server' | 'client',
  ) {
    this.sum = new Float64Array(length);
  }

  add(r: FitResult): void {
    if (r.delta.length !== this.length) throw new RangeError(`update length ${r.delta.length} != ${this.length}`);
    if (!(r.numExamples > 0) || !Number.isFinite(r.numExamples)) throw new RangeError('numExamples must be positive and finite');
    const { norm, clipped } = clipInPlace(r.delta, this.clip);
    const reported = r.metrics.dpNormBelowClip;
    const bit = this.mode === 'client' && (reported === 0 || reported === 1) ? reported : norm <= this.clip ? 1 : 0;
    this.unclipped += bit;
    if (this.mode === 'client' && clipped && norm > this.clip * (1 + 1e-5)) this.serverClipped++;
    const d = r.delta;
    for (let i = 0; i < d.length; i++) this.sum[i] += d[i];
    this.examples += r.numExamples;
    this.records.push({ numExamples: r.numExamples, metrics: r.metrics });
    this.n++;
  }

  /** Clipped sums merge like any sum; noise is added once, by the leader's aggregateFit. */
  exportPartial(): AggregatorPartial {
    return {
      sum: this.sum,
      meta: { n: this.count, examples: this.examples, unclipped: this.unclipped, serverClipped: this.serverClipped, metrics: compactMetrics(this.records) },
    };
  }

  mergePartial(p: AggregatorPartial): void {
    const m = p.meta as { n: number; examples: number; unclipped: number; serverClipped: number; metrics: Array<{ numExamples: number; metrics: Record<string, number> }> };
    if (p.sum.length !== this.length) throw new RangeError(`partial length ${p.sum.length} != ${this.length}`);
    for (let i = 0; i < this.sum.length; i++) this.sum[i] += p.sum[i];
    this.examples += m.examples;
    this.unclipped += m.unclipped;
    this.serverClipped += m.serverClipped;
    this.n += m.n;
    this.records.push(...m.metrics);
  }

  get count(): number {
    return this.n;
  }

  get totalExamples(): number {
    return this.examples;
  }
}

interface DpState {
  version: 1;
  clipNorm: number;
  samplingRate: number | null;
  accountant: ReturnType<RdpAccountant['exportState']>;
  inner: unknown;
}

export class DpFedAvg implements Strategy {
  readonly name = 'dpfedavg';
  readonly streaming = true;
  private clip: number;
  private samplingRate: number | undefined;
  private readonly accountant = new RdpAccountant();

  constructor(
    readonly inner: Strategy,
    private readonly opts: DpFedAvgOptions,
  ) {
    if (!inner.streaming) throw new RangeError('dpfedavg wraps streaming strategies only');
    this.clip = opts.clipNorm;
  }

  /** The clip norm for the next round: devices clipping client-side must use this one. */
  get currentClipNorm(): number {
    return this.clip;
  }

  /** epsilon spent so far at the configured delta (0 before any round; Infinity when z = 0). */
  get epsilon(): number {
    return this.accountant.epsilon(this.opts.targetDelta);
  }

  /** Client-side clipping: every device clips to the clip norm in force this round. */
  configureClientPlan(_round: number, plan: ClientPlan): ClientPlan {
    return this.opts.clipping === 'client' ? { ...plan, clipNorm: this.clip } : plan;
  }

  configureFit(round: number, available: readonly string[], rng: Rng): string[] {
    const chosen = this.inner.configureFit(round, available, rng);
    if (this.opts.populationSize !== undefined) this.samplingRate = Math.min(1, this.opts.expectedClients / this.opts.populationSize);
    else if (available.length > 0) this.samplingRate = chosen.length / available.length;
    return chosen;
  }

  beginFit(_round: number, modelLength: number): DpAggregator {
    return new DpAggregator(modelLength, this.clip, this.opts.clipping);
  }

  aggregateFit(round: number, aggregator: FitAggregator, failures: readonly FitFailure[], global: Float32Array): FitOutcome {
    const agg = aggregator as DpAggregator;
    if (agg.count === 0) throw new RangeError('no results to aggregate');
    if (agg.length !== global.length) throw new RangeError(`update length ${agg.length} != model ${global.length}`);
    const { noiseMultiplier: z, expectedClients: e, adaptive } = this.opts;
    const rng = noiseRng(this.opts.seed, round);
    const zUpdate = adaptive ? updateNoiseMultiplier(z, adaptive.clippedCountStddev) : z;
    const noiseStd = (zUpdate * agg.clip) / e;
    const noisy = new Float64Array(agg.length);
    for (let i = 0; i < noisy.length; i++) noisy[i] = agg.sum[i] / e;
    addGaussianNoise(noisy, noiseStd, rng);
    const innerAgg = this.inner.beginFit(round, global.length);
    innerAgg.add({ clientId: 'dp-aggregate', numExamples: 1, delta: Float32Array.from(noisy), metrics: {} });
    const out = this.inner.aggregateFit(round, innerAgg, failures, global);

    const q = this.samplingRate ?? 1;
    this.accountant.compose(q, z);
    const metrics: Record<string, number> = {
      ...out.metrics,
      ...weightedMetrics(agg.records),
      participants: agg.count,
      examples: agg.totalExamples,
      dpClipNorm: agg.clip,
      dpNoiseStd: noiseStd,
      dpSamplingRate: q,
      dpDelta: this.opts.targetDelta,
    };
    if (z > 0) metrics.dpEpsilon = this.accountant.epsilon(this.opts.targetDelta);
    if (this.opts.clipping === 'client') metrics.dpServerClipped = agg.serverClipped;
    if (adaptive) {
      const bitNoise = z > 0 ? adaptive.clippedCountStddev * gaussian(rng) : 0;
      const fraction = (agg.unclipped + bitNoise) / e;
      this.clip = nextClipNorm(agg.clip, fraction, adaptive);
      metrics.dpUnclippedFraction = fraction;
      metrics.dpNextClipNorm = this.clip;
    }
    return { weights: out.weights, metrics };
  }

  configureEvaluate(round: number, available: readonly string[], rng: Rng): string[] {
    return this.inner.configureEvaluate(round, available, rng);
  }

  aggregateEvaluate(round: number, results: readonly EvalResult[], failures: readonly FitFailure[]): Record<string, number> {
    return this.inner.aggregateEvaluate(round, results, failures);
  }

  exportState(): DpState {
    return {
      version: 1,
      clipNorm: this.clip,
      samplingRate: this.samplingRate ?? null,
      accountant: this.accountant.exportState(),
      inner: this.inner.exportState?.() ?? null,
    };
  }

  importState(state: unknown): void {
    const s = state as DpState | null;
    if (!s || s.version !== 1 || !(s.clipNorm > 0)) throw new RangeError('dpfedavg state: malformed');
    this.accountant.importState(s.accountant);
    if (s.inner !== null) this.inner.importState?.(s.inner);
    this.clip = s.clipNorm;
    this.samplingRate = s.samplingRate ?? undefined;
  }
}
