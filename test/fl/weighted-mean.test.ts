import { describe, expect, it } from 'vitest';
import { WeightedMean } from '../../server/src/fl/weighted-mean.js';
import { BLOCK, FoldKernel, NO_BOUND, boundBits } from '../../server/src/fl/fold-kernel.js';
import { selectClients, selectionSize } from '../../server/src/fl/selection.js';
import { createRng } from '../../server/src/fl/rng.js';
import { canTransition, closeAtDeadline } from '../../server/src/fl/round-state.js';

describe('streaming weighted mean', () => {
  it('matches a hand-computed weighted mean', () => {
    const m = new WeightedMean(3);
    m.add(Float32Array.of(1, 2, 3), 1);
    m.add(Float32Array.of(3, 0, -3), 3);
    // (1*[1,2,3] + 3*[3,0,-3]) / 4 = [2.5, 0.5, -1.5]
    expect(Array.from(m.mean())).toEqual([2.5, 0.5, -1.5]);
    expect(m.count).toBe(2);
    expect(m.totalWeight).toBe(4);
  });

  it('is order-independent up to float rounding and refuses bad input', () => {
    const a = new WeightedMean(2);
    const b = new WeightedMean(2);
    const xs = [Float32Array.of(0.1, 1e6), Float32Array.of(0.2, -1e6), Float32Array.of(0.3, 1)];
    xs.forEach((x, i) => a.add(x, i + 1));
    [...xs].reverse().forEach((x, i) => b.add(x, 3 - i));
    expect(a.mean()[0]).toBeCloseTo(b.mean()[0], 6);
    expect(() => a.add(Float32Array.of(1), 1)).toThrow(RangeError);
    expect(() => a.add(Float32Array.of(1, 2), 0)).toThrow(RangeError);
    expect(() => new WeightedMean(2).mean()).toThrow(RangeError);
  });
});

describe('fold kernel (blocked copy-in, check pass then in-place fold)', () => {
  // Lengths around the block size and the 4-lane padding: the last block's padding must add nothing.
  const lengths = [1, 3, 4, 7, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5];

  it('equals the scalar float64 loop bit for bit at every length', () => {
    for (const len of lengths) {
      const k = new FoldKernel(len);
      const ref = new Float64Array(len);
      for (let r = 0; r < 4; r++) {
        const x = Float32Array.from({ length: len }, (_, i) => Math.sin(i * 7 + r) * 10 ** ((i % 9) - 4));
        const w = r + 0.37;
        expect(k.fold(x, w, r % 2 ? NO_BOUND : boundBits(1e6))).toBe(true);
        for (let i = 0; i < len; i++) ref[i] += w * x[i];
      }
      expect(Array.from(k.sum)).toEqual(Array.from(ref));
    }
  });

  it('refuses a delta failing in any block, the last one included, and changes nothing', () => {
    for (const len of lengths) {
      const k = new FoldKernel(len);
      const good = Float32Array.from({ length: len }, (_, i) => (i % 5) - 2);
      k.fold(good, 3, boundBits(10));
      const before = Float64Array.from(k.sum);
      for (const at of new Set([0, Math.floor(len / 2), len - 1])) {
        for (const v of [NaN, Infinity, -Infinity, 11, -1e30]) {
          const bad = Float32Array.from(good);
          bad[at] = v;
          expect(k.fold(bad, 2, boundBits(10))).toBe(false);
          expect(Array.from(k.sum)).toEqual(Array.from(before));
        }
      }
      // The kernel still folds correctly after refusals (no stale scratch, no half-written blocks).
      expect(k.fold(good, 1, boundBits(10))).toBe(true);
      expect(Array.from(k.sum)).toEqual(Array.from(before, (s, i) => s + good[i]));
    }
  });

  it('lets everything through with NO_BOUND (callers that checked already)', () => {
    const k = new FoldKernel(5);
    expect(k.fold(Float32Array.of(1, 2, 3, 4, 3e38), 1, NO_BOUND)).toBe(true);
    expect(k.sum[4]).toBe(Math.fround(3e38));
  });
});

describe('selection', () => {
  it('over-selects by ceil(target * overSelect), distinct, repeatable under a seed', () => {
    expect(selectionSize(10, 1.3)).toBe(13);
    expect(selectionSize(3, 1)).toBe(3);
    const ids = Array.from({ length: 100 }, (_, i) => `d${i}`);
    const a = selectClients(ids, 10, 1.3, createRng(7));
    const b = selectClients(ids, 10, 1.3, createRng(7));
    expect(a).toEqual(b);
    expect(new Set(a).size).toBe(13);
    expect(selectClients(ids.slice(0, 5), 10, 1.3, createRng(1)).length).toBe(5);
  });

  it('is roughly uniform', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `d${i}`);
    const counts = new Map<string, number>();
    const rng = createRng(3);
    for (let i = 0; i < 5000; i++) for (const id of selectClients(ids, 2, 1, rng)) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });
});

describe('round state machine', () => {
  it('allows only the documented transitions', () => {
    expect(canTransition('selecting', 'training')).toBe(true);
    expect(canTransition('training', 'aggregating')).toBe(true);
    expect(canTransition('training', 'done')).toBe(false);
    expect(canTransition('done', 'failed')).toBe(false);
    expect(canTransition('committing', 'failed')).toBe(true);
    expect(closeAtDeadline(2, 2)).toBe('aggregate');
    expect(closeAtDeadline(1, 2)).toBe('fail');
  });
});
