import { describe, expect, it } from 'vitest';
import { labelHistogram, loadMnist } from '../../simulator/src/mnist.js';
import { dirichlet, iid, partition, shards, sortByLabel } from '../../simulator/src/partition.js';
import { dirichlet as dirichletDraw, createRng, gamma } from '../../simulator/src/rng.js';

const mnist = loadMnist();
const labels = mnist.train.y;

function distinctLabels(h: number[]): number {
  return h.filter((c) => c > 0).length;
}

/** Every row index appears at most once over all clients; returns how many appeared. */
function expectDisjoint(parts: Uint32Array[], n: number): number {
  const seen = new Uint8Array(n);
  let used = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      expect(p[i]).toBeLessThan(n);
      if (seen[p[i]]) throw new Error(`row ${p[i]} given to two clients`);
      seen[p[i]] = 1;
      used++;
    }
    for (let i = 1; i < p.length; i++) expect(p[i]).toBeGreaterThan(p[i - 1]);
  }
  return used;
}

/** Total-variation distance between a client's label distribution and the global one. */
function tvFromGlobal(h: number[], global: number[]): number {
  const n = h.reduce((a, b) => a + b, 0);
  const g = global.reduce((a, b) => a + b, 0);
  return 0.5 * h.reduce((s, c, k) => s + Math.abs(c / n - global[k] / g), 0);
}

describe('MNIST loader', () => {
  it('loads 60k train and 10k test rows in [0, 1] into shared memory', () => {
    expect(mnist.train.n).toBe(60000);
    expect(mnist.test.n).toBe(10000);
    expect(mnist.train.x.length).toBe(60000 * 784);
    expect(mnist.train.x.buffer).toBeInstanceOf(SharedArrayBuffer);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 784 * 100; i++) {
      min = Math.min(min, mnist.train.x[i]);
      max = Math.max(max, mnist.train.x[i]);
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // The well-known class counts of the MNIST training set.
    expect(labelHistogram(labels)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(loadMnist()).toBe(mnist);
  });
});

describe('iid', () => {
  it('gives 100 clients 600 rows each, every row exactly once, labels near uniform', () => {
    const parts = iid(labels, { clients: 100, seed: 1, examplesPerClient: 600 });
    expect(parts).toHaveLength(100);
    expect(parts.every((p) => p.length === 600)).toBe(true);
    expect(expectDisjoint(parts, labels.length)).toBe(60000);
    const global = labelHistogram(labels);
    for (const p of parts) {
      const h = labelHistogram(labels, p);
      expect(distinctLabels(h)).toBe(10);
      expect(tvFromGlobal(h, global)).toBeLessThan(0.12);
    }
  });

  it('is deterministic under a seed and differs across seeds', () => {
    const a = iid(labels, { clients: 10, seed: 7 });
    const b = iid(labels, { clients: 10, seed: 7 });
    const c = iid(labels, { clients: 10, seed: 8 });
    expect(a).toEqual(b);
    expect(a[0]).not.toEqual(c[0]);
  });

  it('spreads a remainder so sizes differ by at most one', () => {
    const parts = iid(labels.subarray(0, 1003), { clients: 10, seed: 1 });
    expect(parts.map((p) => p.length)).toEqual([101, 101, 101, 100, 100, 100, 100, 100, 100, 100]);
    expect(expectDisjoint(parts, 1003)).toBe(1003);
  });

  it('refuses impossible requests', () => {
    expect(() => iid(labels, { clients: 101, seed: 1, examplesPerClient: 600 })).toThrow(RangeError);
    expect(() => iid(labels, { clients: 0, seed: 1 })).toThrow(RangeError);
  });
});

describe('shards (McMahan et al. 2017)', () => {
  it('cuts MNIST into 200 shards of 300, 2 per client: every row once, almost all clients see at most 2 digits', () => {
    const parts = shards(labels, { clients: 100, seed: 3 });
    expect(parts.every((p) => p.length === 600)).toBe(true);
    expect(expectDisjoint(parts, labels.length)).toBe(60000);
    const counts = parts.map((p) => distinctLabels(labelHistogram(labels, p)));
    // Only shards that straddle one of the 9 label boundaries hold two digits.
    expect(Math.max(...counts)).toBeLessThanOrEqual(4);
    expect(counts.filter((c) => c > 2).length).toBeLessThanOrEqual(9);
    expect(counts.filter((c) => c <= 2).length).toBeGreaterThanOrEqual(91);
  });

  it('gives every client at most 2 labels when class sizes are multiples of the shard size', () => {
    const y = new Uint8Array(10 * 120);
    for (let i = 0; i < y.length; i++) y[i] = (i * 7) % 10; // 120 of each label, interleaved
    const parts = shards(y, { clients: 20, seed: 11 }); // 40 shards of 30
    expect(expectDisjoint(parts, y.length)).toBe(y.length);
    for (const p of parts) expect(distinctLabels(labelHistogram(y, p))).toBeLessThanOrEqual(2);
  });

  it('generalises to other client counts and is deterministic', () => {
    const parts = shards(labels, { clients: 30, seed: 5 });
    expect(parts.every((p) => p.length === 2 * 1000)).toBe(true);
    expect(shards(labels, { clients: 30, seed: 5 })).toEqual(parts);
  });

  it('sortByLabel is a stable counting sort', () => {
    const s = sortByLabel([2, 0, 1, 0, 2]);
    expect(Array.from(s)).toEqual([1, 3, 2, 0, 4]);
  });
});

describe('dirichlet', () => {
  const global = labelHistogram(labels);
  const meanTv = (parts: Uint32Array[]) =>
    parts.reduce((s, p) => s + tvFromGlobal(labelHistogram(labels, p), global), 0) / parts.length;

  it('alpha=0.1 is strongly skewed, alpha=100 near uniform; every row used exactly once', () => {
    const skewed = dirichlet(labels, { clients: 50, seed: 9, alpha: 0.1 });
    const flat = dirichlet(labels, { clients: 50, seed: 9, alpha: 100 });
    expect(expectDisjoint(skewed, labels.length)).toBe(60000);
    expect(expectDisjoint(flat, labels.length)).toBe(60000);
    expect(meanTv(skewed)).toBeGreaterThan(0.5);
    expect(meanTv(flat)).toBeLessThan(0.1);
    const dominant = (p: Uint32Array) => {
      const h = labelHistogram(labels, p);
      return Math.max(...h) / p.length;
    };
    const medianDominant = (parts: Uint32Array[]) => parts.map(dominant).sort((a, b) => a - b)[parts.length >> 1];
    expect(medianDominant(skewed)).toBeGreaterThan(0.5);
    expect(medianDominant(flat)).toBeLessThan(0.2);
  });

  it('gives every client at least minPerClient rows and is deterministic', () => {
    const parts = dirichlet(labels, { clients: 100, seed: 4, alpha: 0.05, minPerClient: 20 });
    expect(Math.min(...parts.map((p) => p.length))).toBeGreaterThanOrEqual(20);
    expect(expectDisjoint(parts, labels.length)).toBe(60000);
    expect(dirichlet(labels, { clients: 100, seed: 4, alpha: 0.05, minPerClient: 20 })).toEqual(parts);
  });

  it('partition() dispatches by name', () => {
    expect(partition('dirichlet', labels, { clients: 5, seed: 1, alpha: 1 })).toEqual(
      dirichlet(labels, { clients: 5, seed: 1, alpha: 1 }),
    );
    expect(() => partition('dirichlet', labels, { clients: 5, seed: 1, alpha: 0 })).toThrow(RangeError);
  });
});

describe('rng', () => {
  it('gamma has mean equal to its shape and Dirichlet draws sum to 1', () => {
    const rng = createRng(123);
    for (const shape of [0.1, 1, 5]) {
      let s = 0;
      const k = 20000;
      for (let i = 0; i < k; i++) s += gamma(shape, rng);
      expect(s / k).toBeCloseTo(shape, shape < 1 ? 1 : 0);
    }
    const p = dirichletDraw(10, 0.3, rng);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
  });
});
