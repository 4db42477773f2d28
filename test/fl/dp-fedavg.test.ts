import { describe, expect, it } from 'vitest';
import { DpFedAvg } from '../../server/src/fl/dp/dp-fedavg.js';
import { DEFAULT_RDP_ORDERS, computeRdp, epsilonFromRdp } from '../../server/src/fl/dp/rdp-accountant.js';
import { updateNoiseMultiplier } from '../../server/src/fl/dp/adaptive-clip.js';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import { planFor, runRound } from './strategy-suite.js';

const f32 = (xs: number[]) => Float32Array.from(xs);
const dp = (params: Record<string, unknown>, plan: Record<string, unknown> = {}) =>
  createStrategy(planFor('dpfedavg', { params, plan })) as DpFedAvg;

function expectClose(actual: Float32Array, expected: number[], digits = 6): void {
  expected.forEach((e, i) => expect(actual[i], `index ${i}`).toBeCloseTo(e, digits));
}

describe('DP-FedAvg (McMahan et al. 2018), hand-computed', () => {
  const ups = [
    { delta: f32([3, 4]), numExamples: 100 }, // norm 5 -> clipped to [0.6, 0.8]
    { delta: f32([0, 0.5]), numExamples: 1 }, // under the clip
  ];

  it('clips to S, sums unweighted, divides by the expected count E, not the turnout', () => {
    const s = dp({ noiseMultiplier: 0, clipNorm: 1, expectedClients: 4 });
    const out = runRound(s, 1, f32([1, 1]), ups);
    // (0.6 + 0, 0.8 + 0.5) / 4
    expectClose(out.weights, [1.15, 1.325]);
    expect(out.metrics.dpClipNorm).toBe(1);
    expect(out.metrics.dpNoiseStd).toBe(0);
    expect(out.metrics.dpEpsilon).toBeUndefined(); // no noise: no guarantee to report
    expect(out.metrics.participants).toBe(2);
    expect(out.metrics.examples).toBe(101);
  });

  it('adds Gaussian noise of std z S / E and reports it', () => {
    const s = dp({ noiseMultiplier: 2, clipNorm: 0.5, expectedClients: 4, seed: 1 });
    const n = 40000;
    const out = runRound(s, 1, new Float32Array(n), [{ delta: new Float32Array(n), numExamples: 1 }]);
    expect(out.metrics.dpNoiseStd).toBe(0.25);
    let s2 = 0;
    for (const w of out.weights) s2 += w * w;
    expect(Math.sqrt(s2 / n)).toBeGreaterThan(0.25 * 0.97);
    expect(Math.sqrt(s2 / n)).toBeLessThan(0.25 * 1.03);
  });

  it('reports epsilon after every round from the RDP of the subsampled Gaussian', () => {
    const s = dp({ noiseMultiplier: 1.1, clipNorm: 1, seed: 2, targetDelta: 1e-5 });
    let g: Float32Array = f32([0, 0]);
    const eps: number[] = [];
    for (let r = 1; r <= 3; r++) {
      // runRound offers 20 devices; the plan selects 5: q = 0.25
      const out = runRound(s, r, g, ups.map((u) => ({ ...u, delta: u.delta.slice() })));
      g = out.weights;
      expect(out.metrics.dpSamplingRate).toBe(0.25);
      eps.push(out.metrics.dpEpsilon);
    }
    const want = (t: number) => epsilonFromRdp(DEFAULT_RDP_ORDERS, computeRdp(0.25, 1.1, t, DEFAULT_RDP_ORDERS), 1e-5).epsilon;
    eps.forEach((e, i) => expect(e).toBeCloseTo(want(i + 1), 10));
    expect(eps[0]).toBeLessThan(eps[1]);
    expect(s.epsilon).toBe(eps[2]);
  });

  it('uses E / populationSize as the sampling rate when the population is known', () => {
    const s = dp({ noiseMultiplier: 1, clipNorm: 1, seed: 2, populationSize: 1000 });
    expect(runRound(s, 1, f32([0, 0]), ups).metrics.dpSamplingRate).toBe(5 / 1000);
  });

  it('adaptive clipping moves S by exp(-eta (b - gamma)) (Andrew et al. 2021)', () => {
    const s = dp({ noiseMultiplier: 0, clipNorm: 1, expectedClients: 4, adaptive: { targetQuantile: 0.5, learningRate: 0.2 } });
    const out = runRound(s, 1, f32([0, 0]), ups);
    // bits: [3,4] clipped -> 0, [0,0.5] -> 1; b = 1/4; S' = exp(-0.2 (0.25 - 0.5)) = exp(0.05)
    expect(out.metrics.dpUnclippedFraction).toBe(0.25);
    expect(out.metrics.dpNextClipNorm).toBeCloseTo(Math.exp(0.05), 12);
    expect(s.currentClipNorm).toBeCloseTo(Math.exp(0.05), 12);
    const next = runRound(s, 2, out.weights, [{ delta: f32([3, 4]), numExamples: 1 }]);
    expect(next.metrics.dpClipNorm).toBeCloseTo(Math.exp(0.05), 12);
    // z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2: z = 1, sigma_b = 1 -> (1 - 1/4)^-1/2
    expect(updateNoiseMultiplier(1, 1)).toBeCloseTo(1 / Math.sqrt(0.75), 12);
  });

  it('client-side clipping: trusts the reported bit, re-clips and counts non-compliant devices', () => {
    const s = dp({ noiseMultiplier: 0, clipNorm: 1, expectedClients: 2, clipping: 'client', adaptive: {} });
    const out = runRound(s, 1, f32([0, 0]), [
      { delta: f32([0.6, 0.8]), numExamples: 1, metrics: { dpNormBelowClip: 0 } }, // clipped on the device
      { delta: f32([30, 40]), numExamples: 1, metrics: { dpNormBelowClip: 1 } }, // did not clip
    ]);
    expectClose(out.weights, [0.6, 0.8]);
    expect(out.metrics.dpServerClipped).toBe(1);
    expect(out.metrics.dpUnclippedFraction).toBe(0.5);
  });

  it('post-processes the private mean with the inner server optimizer', () => {
    const wrapped = dp({ noiseMultiplier: 0, clipNorm: 10, expectedClients: 2, inner: 'fedadam', innerParams: { tau: 1e-3 } });
    const plain = createStrategy(planFor('fedadam', { params: { tau: 1e-3 } }));
    const a = runRound(wrapped, 1, f32([1, 1]), ups).weights;
    // the DP mean is ([3,4] + [0,0.5]) / 2
    const b = runRound(plain, 1, f32([1, 1]), [{ delta: f32([1.5, 2.25]), numExamples: 1 }]).weights;
    expect(a).toEqual(b);
  });

  it('exports clip norm, accountant and inner state; a resumed run matches', () => {
    const params = { noiseMultiplier: 0.4, clipNorm: 2, seed: 5, adaptive: {}, inner: 'fedavgm' };
    const a = dp(params);
    const r1 = runRound(a, 1, f32([0, 0]), ups.map((u) => ({ ...u })));
    const b = dp(params);
    b.importState(JSON.parse(JSON.stringify(a.exportState())));
    expect(b.currentClipNorm).toBe(a.currentClipNorm);
    const r2a = runRound(a, 2, r1.weights, ups);
    const r2b = runRound(b, 2, r1.weights, ups);
    expect(r2b.weights).toEqual(r2a.weights);
    expect(r2b.metrics.dpEpsilon).toBe(r2a.metrics.dpEpsilon);
    expect(() => b.importState({ version: 2 })).toThrow(RangeError);
  });

  it('without a seed the noise differs between runs (CSPRNG)', () => {
    const n = 64;
    const run = () => runRound(dp({ noiseMultiplier: 1, clipNorm: 1 }), 1, new Float32Array(n), [{ delta: new Float32Array(n), numExamples: 1 }]).weights;
    expect(run()).not.toEqual(run());
  });
});
