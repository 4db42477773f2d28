import { describe, expect, it } from 'vitest';
import { allFinite, firstOutOfRange, FLOAT32_MAX, rangeHeadroom, withinMagnitude } from '../../server/src/fl/update-checks.js';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import { TaskPlanSchema } from '@flotilla/protocol';

/** The one-pass report check must never accept what the exact checks refuse. */
describe('withinMagnitude and rangeHeadroom', () => {
  const f32 = (xs: number[]) => Float32Array.from(xs);

  it('refuses NaN and infinities whatever the bound', () => {
    for (const bad of [NaN, Infinity, -Infinity]) expect(withinMagnitude(f32([0, 1, bad, 2]), FLOAT32_MAX)).toBe(false);
    expect(withinMagnitude(f32([0, 1, 2]), 0)).toBe(false); // no bound known: the exact checks run
    expect(withinMagnitude(f32([0, -2, 2]), 2)).toBe(true);
    expect(withinMagnitude(f32([0, -2.5, 2]), 2)).toBe(false);
  });

  it('a headroom never lets an out-of-range sum through (bases near float32 max, deltas at the bound)', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296);
    for (let trial = 0; trial < 2000; trial++) {
      const scale = [1, 1e30, 1e37, FLOAT32_MAX / 2, FLOAT32_MAX * 0.999][trial % 5];
      const base = Float32Array.from({ length: 8 }, () => (rand() * 2 - 1) * scale);
      const h = rangeHeadroom(base);
      // the largest float32 deltas within the headroom, with every sign
      const d = Float32Array.from({ length: 8 }, (_, i) => Math.fround(h) > h ? Math.fround(h * (1 - 2 ** -23)) * (i % 2 ? 1 : -1) : Math.fround(h) * (i % 2 ? 1 : -1));
      if (withinMagnitude(d, h)) {
        expect(allFinite(d)).toBe(true);
        expect(firstOutOfRange(base, d)).toBe(-1);
      }
    }
  });

  it('a base holding NaN or infinity has no headroom', () => {
    expect(rangeHeadroom(f32([0, NaN, 1]))).toBe(0);
    expect(rangeHeadroom(f32([0, Infinity]))).toBe(0);
    expect(rangeHeadroom(f32([1, -2]))).toBeGreaterThan(FLOAT32_MAX * 0.99);
  });

  it("a strategy's headroom implies its own preview passes (FedAvg, norm-bounded); server optimizers declare none", () => {
    const plan = (strategy: unknown) => TaskPlanSchema.parse({ clientsPerRound: 4, strategy });
    const base = Float32Array.from({ length: 16 }, (_, i) => (i - 8) * 1e37);
    for (const s of [{ name: 'fedavg' }, { name: 'normbounded', params: { maxNorm: 1e38 } }]) {
      const st = createStrategy(plan(s));
      const h = st.previewHeadroom!(base);
      expect(h).toBeGreaterThan(0);
      const d = Float32Array.from({ length: 16 }, (_, i) => Math.fround(h * (1 - 2 ** -20)) * (i % 2 ? 1 : -1));
      expect(withinMagnitude(d, h)).toBe(true);
      expect(st.previewOutOfRange!(d, base)).toBe(-1);
    }
    for (const name of ['fedavgm', 'fedadam']) expect(createStrategy(plan({ name })).previewHeadroom!(base)).toBe(0);
  });
});
