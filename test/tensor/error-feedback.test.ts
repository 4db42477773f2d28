import { describe, expect, it } from 'vitest';
import { ErrorFeedback, getCodec } from '@flotilla/protocol';
import { seeded } from './codec-suite.js';

const topk = getCodec('topk');

describe('ErrorFeedback', () => {
  it('sends a small coordinate once its residual outgrows the others (hand-computed)', () => {
    const ef = new ErrorFeedback(2);
    const delta = Float32Array.from([1, 0.3]);
    const sent: number[][] = [];
    for (let t = 0; t < 4; t++) sent.push(Array.from(topk.decode(ef.encode(topk, delta, { fraction: 0.5 }), 2)));
    // corrected: [1, .3] -> send 0; [1, .6] -> 0; [1, .9] -> 0; [1, 1.2] -> send 1 (1.2)
    expect(sent[0]).toEqual([1, 0]);
    expect(sent[1]).toEqual([1, 0]);
    expect(sent[2]).toEqual([1, 0]);
    expect(sent[3][0]).toBe(0);
    expect(sent[3][1]).toBeCloseTo(1.2, 6);
    expect(ef.pending[0]).toBeCloseTo(1, 6);
    expect(ef.pending[1]).toBeCloseTo(0, 6);
  });

  it('loses nothing: sum of sent = sum of deltas - final residual', () => {
    const n = 500;
    const rng = seeded(11);
    const ef = new ErrorFeedback(n);
    const sumDelta = new Float64Array(n);
    const sumSent = new Float64Array(n);
    for (let t = 0; t < 30; t++) {
      const d = Float32Array.from({ length: n }, () => rng() - 0.5);
      d.forEach((v, i) => (sumDelta[i] += v));
      const copy = d.slice();
      const y = topk.decode(ef.encode(topk, d, { fraction: 0.05 }), n);
      expect(d).toEqual(copy);
      y.forEach((v, i) => (sumSent[i] += v));
    }
    const r = ef.pending;
    for (let i = 0; i < n; i++) expect(Math.abs(sumSent[i] + r[i] - sumDelta[i])).toBeLessThan(1e-4);
    expect(ef.residualNorm()).toBeGreaterThan(0);
    ef.reset();
    expect(ef.residualNorm()).toBe(0);
  });

  it('exports and imports its residual; rejects wrong lengths', () => {
    const ef = new ErrorFeedback(3);
    ef.encode(topk, Float32Array.from([3, 2, 1]), { fraction: 0.3 });
    const other = new ErrorFeedback(3);
    other.importState(ef.exportState());
    expect(other.pending).toEqual(ef.pending);
    expect(() => other.importState(new Float32Array(2))).toThrow(RangeError);
    expect(() => ef.encode(topk, new Float32Array(4))).toThrow(RangeError);
  });
});
