import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RDP_ORDERS,
  RdpAccountant,
  computeRdp,
  deltaFromRdp,
  epsilonFromRdp,
} from '../../server/src/fl/dp/rdp-accountant.js';
import { logErfc, logGamma } from '../../server/src/fl/dp/special-functions.js';

/**
 * Reference values, each from a published test of an established implementation:
 *  [A] google/differential-privacy, python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py,
 *      test_compute_rdp_poisson_sampled_gaussian: q=0.01, sigma=2.5, 50 steps, orders
 *      [1.5, 2.5, 5, 50, 100, inf] -> [6.70579741e-04, 1.08548710e-03, 2.18075656e-03,
 *      2.38460375e-02, 1.67416308e02, inf] (rtol 1e-4);
 *      test_compute_epsilon_delta_pure_dp: orders 2..32, rdp 1.1 -> eps 1.32783806176 at delta
 *      1e-5, order 32 (and back: delta 1e-5 at that eps);
 *      test_compute_epsilon_delta_gaussian: q=1, sigma=4.530877117, orders 1..100 step 0.001 ->
 *      exactly (1, 1e-6)-DP.
 *  [B] tensorflow/privacy, tensorflow_privacy/privacy/analysis/rdp_accountant_test.py,
 *      test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) = 0.07737 (5 places).
 *  [C] pytorch/opacus, opacus/tests/accountants_test.py, test_rdp_accountant: sigma=1.5, q=0.04,
 *      int(90 / 0.04) = 2250 steps, delta 1e-5 -> eps 7.32911117143 with Opacus' default orders
 *      (1 + x/10 for x in 1..99, then 12..63). We get 7.32933: Opacus (like old TF Privacy) sums
 *      the fractional-order series with signs (opacus/accountants/analysis/rdp.py), while we sum
 *      magnitudes as dp_accounting does, a slightly looser upper bound; so we check from above,
 *      to 5e-4.
 */
describe('RDP of the subsampled Gaussian mechanism', () => {
  it('[A] matches dp_accounting at integer, fractional and infinite orders', () => {
    const got = computeRdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100, Infinity]);
    const want = [6.70579741e-4, 1.0854871e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2];
    want.forEach((w, i) => expect(Math.abs(got[i] - w) / w, `order index ${i}`).toBeLessThan(1e-4));
    expect(got[5]).toBe(Infinity);
  });

  it('[B] matches TF Privacy compute_rdp(0.1, 2, 10, 5)', () => {
    expect(computeRdp(0.1, 2, 10, [5])[0]).toBeCloseTo(0.07737, 5);
  });

  it('has the closed forms at q = 0 and q = 1, and Infinity without noise', () => {
    expect(computeRdp(0, 10, 1, [20])[0]).toBe(0);
    expect(computeRdp(1, 10, 1, [20])[0]).toBeCloseTo(0.1, 15);
    expect(computeRdp(0.1, 0, 1, [2])[0]).toBe(Infinity);
  });
});

describe('RDP -> (eps, delta)', () => {
  it('[A] pure DP: eps 1.32783806176 at order 32, and back', () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const rdp = orders.map(() => 1.1);
    const { epsilon, order } = epsilonFromRdp(orders, rdp, 1e-5);
    expect(epsilon).toBeCloseTo(1.32783806176, 9);
    expect(order).toBe(32);
    const back = deltaFromRdp(orders, rdp, 1.32783806176);
    expect(back.delta).toBeCloseTo(1e-5, 9);
    expect(back.order).toBe(32);
  });

  it('[A] the Gaussian calibrated to (1, 1e-6)-DP', () => {
    const orders = Array.from({ length: 99000 }, (_, i) => 0.001 * (i + 1000)).filter((a) => a > 1);
    const rdp = computeRdp(1, 4.530877117, 1, orders);
    expect(epsilonFromRdp(orders, rdp, 1e-6).epsilon).toBeCloseTo(1, 6);
    expect(deltaFromRdp(orders, rdp, 1).delta).toBeCloseTo(1e-6, 9);
  });

  it('[C] DP-SGD sigma 1.5, q 0.04, 2250 steps: eps 7.329 at delta 1e-5 (Opacus)', () => {
    const orders = [...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10), ...Array.from({ length: 52 }, (_, x) => 12 + x)];
    const { epsilon } = epsilonFromRdp(orders, computeRdp(0.04, 1.5, 2250, orders), 1e-5);
    expect(epsilon).toBeGreaterThanOrEqual(7.32911117143);
    expect(epsilon).toBeLessThan(7.32911117143 + 5e-4);
  });

  it('eps grows with steps and shrinks with noise; default orders cover the usual regime', () => {
    const eps = (q: number, s: number, t: number) => epsilonFromRdp(DEFAULT_RDP_ORDERS, computeRdp(q, s, t), 1e-5);
    const base = eps(0.01, 1.1, 10000);
    expect(base.epsilon).toBeGreaterThan(eps(0.01, 1.1, 1000).epsilon);
    expect(base.epsilon).toBeGreaterThan(eps(0.01, 2, 10000).epsilon);
    expect(base.order).toBeGreaterThan(DEFAULT_RDP_ORDERS[0]);
    expect(base.order).toBeLessThan(DEFAULT_RDP_ORDERS[DEFAULT_RDP_ORDERS.length - 1]);
  });
});

describe('RdpAccountant', () => {
  it('composes rounds like computeRdp with steps, and resumes from JSON', () => {
    const a = new RdpAccountant();
    expect(a.epsilon(1e-5)).toBe(0);
    for (let i = 0; i < 100; i++) a.compose(0.05, 1.2);
    const direct = epsilonFromRdp(DEFAULT_RDP_ORDERS, computeRdp(0.05, 1.2, 100), 1e-5).epsilon;
    expect(a.epsilon(1e-5)).toBeCloseTo(direct, 10);
    const b = new RdpAccountant();
    b.importState(JSON.parse(JSON.stringify(a.exportState())));
    expect(b.compositions).toBe(100);
    b.compose(0.05, 1.2);
    a.compose(0.05, 1.2);
    expect(b.epsilon(1e-5)).toBe(a.epsilon(1e-5));
    expect(() => new RdpAccountant([2, 3]).importState(a.exportState())).toThrow(RangeError);
  });

  it('is Infinity without noise, and keeps that through JSON', () => {
    const a = new RdpAccountant();
    a.compose(0.1, 0);
    expect(a.epsilon(1e-5)).toBe(Infinity);
    const b = new RdpAccountant();
    b.importState(JSON.parse(JSON.stringify(a.exportState())));
    expect(b.epsilon(1e-5)).toBe(Infinity);
  });
});

describe('special functions (values from Python math.erfc / math.lgamma)', () => {
  it('logErfc is accurate from the left tail to far right', () => {
    const cases: Array<[number, number]> = [
      [0.5, 0.4795001221869535],
      [1, 0.15729920705028513],
      [1.9999, 0.004679802092970608],
      [2, 0.004677734981047266],
      [3, 2.209049699858544e-5],
      [5, 1.5374597944280349e-12],
      [-1, 1.842700792949715],
      [-2.5, 1.999593047982555],
    ];
    for (const [x, want] of cases) expect(Math.abs(Math.exp(logErfc(x)) / want - 1), `x=${x}`).toBeLessThan(1e-12);
    // erfc(30) ~ e^-900 / (30 sqrt(pi)) * (1 - 1/1800 + 3/3240000): far below the float64 range
    const asym = -900 - Math.log(30) - 0.5 * Math.log(Math.PI) + Math.log(1 - 1 / 1800 + 3 / 3240000);
    expect(logErfc(30)).toBeCloseTo(asym, 8);
  });

  it('logGamma matches lgamma, including the reflection branch', () => {
    const cases: Array<[number, number]> = [
      [0.5, 0.5723649429247004],
      [-0.5, 1.265512123484645],
      [10, 12.801827480081467],
      [100.5, 361.4355404677776],
      [1e-3, 6.907178885383854],
    ];
    for (const [x, want] of cases) expect(Math.abs(logGamma(x) - want), `x=${x}`).toBeLessThan(1e-12 * Math.max(1, want));
  });
});
