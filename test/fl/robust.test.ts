import { describe, expect, it } from 'vitest';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import { krumScores } from '../../server/src/fl/strategies/krum.js';
import { planFor, runRound } from './strategy-suite.js';

const f32 = (xs: number[]) => Float32Array.from(xs);
const ups = (vs: number[][], n = (i: number) => 1 + i) => vs.map((v, i) => ({ delta: f32(v), numExamples: n(i) }));

function expectClose(actual: Float32Array, expected: number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i], `index ${i}`).toBeCloseTo(e, digits));
}

describe('coordinate-wise median (Yin et al. 2018), hand-computed', () => {
  it('median of 3 known vectors, unweighted', () => {
    const s = createStrategy(planFor('fedmedian', { params: {} }));
    const out = runRound(s, 1, f32([0, 0, 0]), ups([[1, 5, -1], [2, -7, 0], [100, 0, 3]], (i) => [1, 1, 1000][i]));
    expectClose(out.weights, [2, 0, 0]);
  });

  it('even count: mean of the two middle values', () => {
    const s = createStrategy(planFor('fedmedian', { params: {} }));
    const out = runRound(s, 1, f32([1, 1, 1]), ups([[1, 5, -1], [2, -7, 0], [100, 0, 3], [0, 1, 1]]));
    expectClose(out.weights, [2.5, 1.5, 1.5]);
  });
});

describe('trimmed mean (Yin et al. 2018), hand-computed', () => {
  const vs = [[1], [2], [3], [4], [100]];
  it('beta 0.2 of 5 drops one per side: mean(2, 3, 4) = 3', () => {
    const out = runRound(createStrategy(planFor('fedtrimmedavg', { params: { beta: 0.2 } })), 1, f32([0]), ups(vs));
    expectClose(out.weights, [3]);
    expect(out.metrics.trimmedPerSide).toBe(1);
  });
  it('beta 0.1 of 5 drops none: the unweighted mean 22', () => {
    expectClose(runRound(createStrategy(planFor('fedtrimmedavg', { params: { beta: 0.1 } })), 1, f32([0]), ups(vs)).weights, [22]);
  });
});

describe('Krum and Multi-Krum (Blanchard et al. 2017), hand-computed', () => {
  // Inliers a, b, c, d and an outlier e. Squared distances: ab .04, ac .01, ad .02, bc .05,
  // bd .02, cd .01. With f = 1, n - f - 2 = 2 neighbours: scores a .03, b .06, c .02, d .03, e ~394.
  const vs = [[0, 0], [0.2, 0], [0, 0.1], [0.1, 0.1], [10, 10]];

  it('scores as computed by hand', () => {
    const { scores, degraded } = krumScores(vs.map(f32), 1);
    expectClose(Float32Array.from(scores.slice(0, 4)), [0.03, 0.06, 0.02, 0.03]);
    expect(scores[4]).toBeGreaterThan(390);
    expect(degraded).toBe(false);
  });

  it('Krum picks the known inlier c', () => {
    const out = runRound(createStrategy(planFor('krum', { params: { byzantine: 1 } })), 1, f32([1, 1]), ups(vs));
    expectClose(out.weights, [1, 1.1]);
    expect(out.metrics.krumSelected).toBe(1);
  });

  it('Multi-Krum averages the n - f best, all inliers', () => {
    const out = runRound(createStrategy(planFor('multikrum', { params: { byzantine: 1 } })), 1, f32([0, 0]), ups(vs));
    expectClose(out.weights, [0.075, 0.05]);
    expect(out.metrics.krumSelected).toBe(4);
  });

  it('Multi-Krum keep = 2 takes c, then the earlier of the tied a and d', () => {
    const out = runRound(createStrategy(planFor('multikrum', { params: { byzantine: 1, keep: 2 } })), 1, f32([0, 0]), ups(vs));
    expectClose(out.weights, [0, 0.05]);
  });

  it('with dropouts below 2f + 3 it still chooses, and says it is degraded', () => {
    const out = runRound(createStrategy(planFor('krum', { params: { byzantine: 1 } })), 1, f32([0, 0]), ups(vs.slice(0, 3)));
    expect(out.metrics.krumDegraded).toBe(1);
    expectClose(out.weights, [0, 0]); // a: nearest neighbour at .01, b .04, c .01 -> tie, a first
  });
});

describe('norm-bounded averaging (Sun et al. 2019), hand-computed', () => {
  it('clips [3, 4] to norm 1 before the weighted mean', () => {
    const s = createStrategy(planFor('normbounded', { params: { maxNorm: 1 } }));
    const out = runRound(s, 1, f32([0, 0]), ups([[3, 4], [0, 1]], () => 1));
    expectClose(out.weights, [0.3, 0.9]);
    expect(out.metrics.normClipped).toBe(1);
  });
});

describe('robust strategies against a -10x scaled attacker', () => {
  it('median, trimmed mean, Krum and norm bounding stay near the honest update; FedAvg does not', () => {
    const honest = [0.1, -0.2, 0.3];
    const vs = [honest, honest.map((x) => x * 1.1), honest.map((x) => x * 0.9), honest.map((x) => x * 1.05), honest.map((x) => x * -10)];
    const dist = (name: string, params: Record<string, unknown> = {}) => {
      const w = runRound(createStrategy(planFor(name, { params })), 1, f32([0, 0, 0]), ups(vs, () => 1)).weights;
      return Math.hypot(...honest.map((h, i) => w[i] - h));
    };
    expect(dist('fedavg')).toBeGreaterThan(0.5);
    expect(dist('fedmedian')).toBeLessThan(0.05);
    expect(dist('fedtrimmedavg', { beta: 0.2 })).toBeLessThan(0.05);
    expect(dist('krum', { byzantine: 1 })).toBeLessThan(0.05);
    expect(dist('multikrum', { byzantine: 1 })).toBeLessThan(0.05);
    expect(dist('normbounded', { maxNorm: 0.4 })).toBeLessThan(0.25);
  });
});
