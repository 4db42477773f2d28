import { describe, expect, it } from 'vitest';
import { stalenessHistogram, stalenessMetrics, stalenessWeight } from '../../server/src/fl/async/staleness.js';

/** Staleness weights (docs/async.md): the three functions, their bounds, and the histogram round trip. */
describe('staleness weighting', () => {
  it('constant is 1; polynomial is (1 + s)^-a; hinge is 1 up to b and 1 / (a (s - b) + 1) after', () => {
    for (const s of [0, 1, 5, 100]) expect(stalenessWeight({ kind: 'constant' }, s)).toBe(1);
    expect(stalenessWeight({ kind: 'polynomial', a: 0.5 }, 0)).toBe(1);
    expect(stalenessWeight({ kind: 'polynomial', a: 0.5 }, 3)).toBeCloseTo(0.5, 12);
    expect(stalenessWeight({ kind: 'polynomial', a: 1 }, 9)).toBeCloseTo(0.1, 12);
    expect(stalenessWeight({ kind: 'hinge', a: 10, b: 4 }, 4)).toBe(1);
    expect(stalenessWeight({ kind: 'hinge', a: 10, b: 4 }, 5)).toBeCloseTo(1 / 11, 12);
    expect(stalenessWeight({ kind: 'hinge', a: 0.5, b: 0 }, 4)).toBeCloseTo(1 / 3, 12);
  });

  it('never exceeds 1 and never grows with staleness (so a clipped delta keeps its bound)', () => {
    for (const w of [{ kind: 'polynomial', a: 0.3 }, { kind: 'hinge', a: 2, b: 3 }, { kind: 'constant' }] as const) {
      let last = Infinity;
      for (let s = 0; s < 200; s++) {
        const x = stalenessWeight(w, s);
        expect(x).toBeGreaterThan(0);
        expect(x).toBeLessThanOrEqual(1);
        expect(x).toBeLessThanOrEqual(last);
        last = x;
      }
    }
    expect(() => stalenessWeight({ kind: 'constant' }, -1)).toThrow(RangeError);
  });

  it('stores a step’s staleness as counts in its train metrics and reads the histogram back', () => {
    const m = stalenessMetrics([0, 2, 2, 5]);
    expect(m).toMatchObject({ 'staleness.0': 1, 'staleness.2': 2, 'staleness.5': 1, stalenessMean: 2.25, stalenessMax: 5 });
    expect(stalenessHistogram({ loss: 1, ...m })).toEqual({ '0': 1, '2': 2, '5': 1 });
    expect(stalenessHistogram({ loss: 1 })).toBeNull();
    expect(stalenessMetrics([])).toEqual({});
  });
});
