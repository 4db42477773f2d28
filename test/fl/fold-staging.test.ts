import { describe, expect, it } from 'vitest';
import { WeightedMean } from '../../server/src/fl/weighted-mean.js';
import { BLOCK, FoldKernel, NO_BOUND, boundBits, defaultDepth } from '../../server/src/fl/fold-kernel.js';
import { FOLD_MAX } from '../../server/src/fl/fold-kernel-wasm.js';

// Staged multi-report folds (fold-kernel.ts `stage`/`flush`, WeightedMean's default): `depth`
// accepted reports are folded in one pass over the float64 sum, with the float64 operations of
// folding them one by one, so the sum must equal the scalar loop bit for bit.

const lengths = [1, 3, 4, 7, BLOCK - 1, BLOCK + 1, 3 * BLOCK + 5];
/** Values over nine decades, so that adding the same terms in another order changes some bits. */
const report = (len: number, r: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 7 + r) * 10 ** ((i % 9) - 4));
const weightOf = (r: number) => r + 0.37;
/** The scalar reference: s[i] += w * x[i], report after report. */
function scalar(len: number, xs: Float32Array[], ws: number[]): Float64Array {
  const s = new Float64Array(len);
  xs.forEach((x, r) => {
    for (let i = 0; i < len; i++) s[i] += ws[r] * x[i];
  });
  return s;
}

describe('staged multi-report fold', () => {
  it('equals the scalar float64 loop bit for bit at every depth and length, remainder flushed at the end', () => {
    for (let depth = 1; depth <= FOLD_MAX; depth++) {
      for (const len of lengths) {
        const m = new WeightedMean(len, depth);
        expect(m.depth).toBe(depth);
        const xs = Array.from({ length: 2 * depth + 1 }, (_, r) => report(len, r));
        const ws = xs.map((_, r) => weightOf(r));
        xs.forEach((x, r) => (r % 2 ? m.add(x, ws[r]) : expect(m.addWithin(x, ws[r], boundBits(1e6))).toBe(true)));
        const ref = scalar(len, xs, ws);
        expect(Array.from(m.rawSum)).toEqual(Array.from(ref));
        const total = ws.reduce((a, b) => a + b, 0);
        expect(Array.from(m.mean())).toEqual(Array.from(Float32Array.from(ref, (s) => s * (1 / total))));
      }
    }
  });

  it('is a meaningful exactness check: the same reports folded in reverse order differ in some bits', () => {
    const len = BLOCK + 1;
    const xs = Array.from({ length: 9 }, (_, r) => report(len, r));
    const ws = xs.map((_, r) => weightOf(r));
    expect(Array.from(scalar(len, [...xs].reverse(), [...ws].reverse()))).not.toEqual(Array.from(scalar(len, xs, ws)));
  });

  it('a refused report among staged ones takes no slot and changes nothing, wherever its bad value is', () => {
    const len = 3 * BLOCK + 5;
    const bound = boundBits(10);
    const good = Array.from({ length: 6 }, (_, r) => Float32Array.from({ length: len }, (_, i) => ((i + r) % 5) - 2 + r / 8));
    for (const at of [0, BLOCK + 7, len - 1]) {
      for (const v of [NaN, Infinity, -Infinity, 11]) {
        const m = new WeightedMean(len, 4);
        const plain = new WeightedMean(len, 1);
        const bad = Float32Array.from(good[0]);
        bad[at] = v;
        // Refused with 0, 2 and 3 of the 4 slots taken (with 3, accepting it would have flushed).
        expect(m.addWithin(bad, 1, bound)).toBe(false);
        for (let r = 0; r < 6; r++) {
          expect(m.addWithin(good[r], weightOf(r), bound)).toBe(true);
          plain.add(good[r], weightOf(r));
          if (r === 1 || r === 2) {
            expect(m.addWithin(bad, 2, bound)).toBe(false);
            expect(m.count).toBe(r + 1);
          }
        }
        expect(m.count).toBe(6);
        expect(m.totalWeight).toBe(plain.totalWeight);
        expect(Array.from(m.rawSum)).toEqual(Array.from(plain.rawSum));
        expect(Array.from(m.rawSum)).toEqual(Array.from(scalar(len, good, good.map((_, r) => weightOf(r)))));
      }
    }
  });

  it('copies what it stages: the caller may reuse its array at once', () => {
    const len = BLOCK + 3;
    const m = new WeightedMean(len, 4);
    const buf = report(len, 0);
    const first = Float32Array.from(buf);
    m.add(buf, 2);
    buf.set(report(len, 1));
    m.addWithin(buf, 3, NO_BOUND);
    buf.fill(1e9); // after the last add, before anything was folded
    expect(Array.from(m.rawSum)).toEqual(Array.from(scalar(len, [first, report(len, 1)], [2, 3])));
  });

  it('flushes at finish: mean, rawSum and merge fold what is staged first, in order', () => {
    const len = 2 * BLOCK + 9;
    const xs = Array.from({ length: 7 }, (_, r) => report(len, r));
    const staged = new WeightedMean(len, 4);
    const plain = new WeightedMean(len, 1);
    for (let r = 0; r < 3; r++) staged.add(xs[r], weightOf(r)), plain.add(xs[r], weightOf(r));
    expect(Array.from(staged.mean())).toEqual(Array.from(plain.mean()));
    for (let r = 3; r < 5; r++) staged.add(xs[r], weightOf(r)), plain.add(xs[r], weightOf(r));
    // A partial merged while two reports are staged: they are folded before it, as on a plain accumulator.
    const other = new WeightedMean(len, 1);
    other.add(xs[5], 5);
    staged.merge(other.rawSum, 5, 1);
    plain.merge(other.rawSum, 5, 1);
    staged.add(xs[6], 1);
    plain.add(xs[6], 1);
    staged.flush();
    expect(Array.from(staged.rawSum)).toEqual(Array.from(plain.rawSum));
    expect(staged.count).toBe(7);
    expect(staged.totalWeight).toBe(plain.totalWeight);
  });

  it('FoldKernel: fold() folds the staged reports first, pending counts them, depth is bounded', () => {
    const len = BLOCK + 5;
    const k = new FoldKernel(len, 3);
    const xs = [0, 1, 2].map((r) => report(len, r));
    expect(k.stage(xs[0], 1.5, NO_BOUND)).toBe(true);
    expect(k.stage(xs[1], 2.5, boundBits(1e6))).toBe(true);
    expect(k.pending).toBe(2);
    expect(Array.from(k.sum)).toEqual(Array.from(new Float64Array(len))); // nothing folded yet
    expect(k.fold(xs[2], 3.5, boundBits(1e6))).toBe(true);
    expect(k.pending).toBe(0);
    expect(Array.from(k.sum)).toEqual(Array.from(scalar(len, xs, [1.5, 2.5, 3.5])));
    expect(() => new FoldKernel(4, 0)).toThrow(RangeError);
    expect(() => new FoldKernel(4, FOLD_MAX + 1)).toThrow(RangeError);
    expect(() => k.stage(new Float32Array(3), 1, NO_BOUND)).toThrow(RangeError);
  });

  it('defaultDepth is 4, less only where the sum and 4 slots would not fit in one WebAssembly memory', () => {
    expect(defaultDepth(1)).toBe(4);
    expect(defaultDepth(1_000_000)).toBe(4);
    expect(defaultDepth(200_000_000)).toBe(3); // 1.6 GB of sum + 3 x 0.8 GB < 4 GiB
    expect(defaultDepth(500_000_000)).toBe(1);
    expect(new WeightedMean(10).depth).toBe(4);
  });
});
