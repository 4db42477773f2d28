import { describe, expect, it } from 'vitest';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import { FedProx } from '../../server/src/fl/strategies/fedprox.js';
import { planFor, runRound } from './strategy-suite.js';

const f32 = (xs: number[]) => Float32Array.from(xs);

function expectClose(actual: Float32Array, expected: number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i], `index ${i}`).toBeCloseTo(e, digits));
}

describe('FedAvgM, hand-computed (Hsu et al. 2019)', () => {
  // weighted mean of [1, 0] (n=1) and [4, -3] (n=2) is [3, -2]
  const ups = [
    { delta: f32([1, 0]), numExamples: 1 },
    { delta: f32([4, -3]), numExamples: 2 },
  ];
  it('v1 = D, v2 = 0.9 v1 + D; x += eta v', () => {
    const s = createStrategy(planFor('fedavgm', { params: { serverLearningRate: 0.5, serverMomentum: 0.9 } }));
    const x1 = runRound(s, 1, f32([10, 10]), ups).weights;
    expectClose(x1, [10 + 0.5 * 3, 10 + 0.5 * -2]);
    const x2 = runRound(s, 2, x1, ups).weights;
    // v2 = 0.9 * [3, -2] + [3, -2] = [5.7, -3.8]
    expectClose(x2, [11.5 + 0.5 * 5.7, 9 + 0.5 * -3.8], 5);
  });
});

describe('FedOpt family, hand-computed (Reddi et al. 2020)', () => {
  // One client, D1 = [0.5, -2, 0], then D2 = -0.5 * D1; beta1 0.9, beta2 0.99, eta 0.1, tau 1e-3,
  // m0 = 0, v0 = tau^2. FedAdam round 1, coordinate 0:
  //   m = 0.1 * 0.5 = 0.05; v = 0.99e-6 + 0.01 * 0.25 = 0.00250099; sqrt(v) = 0.0500099
  //   step = 0.1 * 0.05 / (0.0500099 + 0.001) = 0.0980202
  // The other values follow the same recurrences (checked with a float64 script).
  const params = { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
  const expected: Record<string, [number[], number[]]> = {
    fedadam: [
      [0.09802019012094845, -0.0995012623676586, 0],
      [0.035281803577099084, -0.03576013932986031, 0],
    ],
    fedyogi: [
      [0.09801999800039984, -0.09950124999218754, 0],
      [0.035142811516145546, -0.035617445409084174, 0],
    ],
    fedadagrad: [
      [0.00998001999998, -0.009995001249999922, 0],
      [0.003571314488329106, -0.0035761091217705217, 0],
    ],
  };
  for (const [name, [step1, step2]] of Object.entries(expected)) {
    it(`${name}: two steps`, () => {
      const p = name === 'fedadagrad' ? { eta: 0.1, beta1: 0.9, tau: 1e-3 } : params;
      const s = createStrategy(planFor(name, { params: p }));
      const x0 = f32([1, 1, 1]);
      const x1 = runRound(s, 1, x0, [{ delta: f32([0.5, -2, 0]), numExamples: 3 }]).weights;
      expectClose(x1, step1.map((d) => 1 + d));
      const x2 = runRound(s, 2, x1, [{ delta: f32([-0.25, 1, 0]), numExamples: 3 }]).weights;
      expectClose(x2, step1.map((d, i) => 1 + d + step2[i]));
    });
  }

  it('FedYogi and FedAdam differ once v exceeds D^2', () => {
    const run = (name: string) => {
      const s = createStrategy(planFor(name, { params }));
      let x: Float32Array = f32([0]);
      for (let r = 1; r <= 3; r++) x = runRound(s, r, x, [{ delta: f32([r === 1 ? 1 : 0.01]), numExamples: 1 }]).weights;
      return x[0];
    };
    expect(run('fedyogi')).not.toBeCloseTo(run('fedadam'), 4);
  });
});

describe('FedProx', () => {
  it('is FedAvg on the server and carries the plan mu', () => {
    const s = createStrategy(planFor('fedprox', { params: {}, plan: { proximalMu: 0.05 } }));
    expect(s).toBeInstanceOf(FedProx);
    expect((s as FedProx).proximalMu).toBe(0.05);
    const ups = [
      { delta: f32([1, 0]), numExamples: 1 },
      { delta: f32([4, -3]), numExamples: 2 },
    ];
    expectClose(runRound(s, 1, f32([0, 0]), ups).weights, [3, -2]);
  });
});
