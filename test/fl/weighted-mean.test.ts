import { describe, expect, it } from 'vitest';
import { WeightedMean } from '../../server/src/fl/weighted-mean.js';
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
