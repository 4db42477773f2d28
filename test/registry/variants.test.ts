import { describe, expect, it } from 'vitest';
import { buildManifest } from '@flotilla/protocol';
import { decodeSparse, encodeSparse, magnitudePrune } from '../../server/src/registry/magnitude-prune.js';
import { VARIANTS, decodeVariant, encodeVariant, DEFAULT_VARIANT_OPTIONS } from '../../server/src/registry/variants.js';
import { rollbackTarget } from '../../server/src/registry/alias-rules.js';
import type { ModelSpec } from '@flotilla/protocol';

const manifest = buildManifest([
  { name: 'k', shape: [100, 50] },
  { name: 'b', shape: [50] },
]);
const spec: ModelSpec = { topology: {}, manifest, inputShape: [100], numClasses: 50 };
function weights(seed = 1): Float32Array {
  let s = seed;
  const w = new Float32Array(5050);
  for (let i = 0; i < w.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    w[i] = (s / 2 ** 31 - 0.5) * 0.2;
  }
  return w;
}

describe('weight variants', () => {
  it('float16 is half the size, int8 about a quarter, pruned sparse under the dense size', () => {
    const w = weights();
    const sizes = Object.fromEntries(VARIANTS.map((v) => [v, encodeVariant(v, w, spec, DEFAULT_VARIANT_OPTIONS).bytes.byteLength]));
    expect(sizes.float16).toBe(2 * w.length);
    expect(sizes.int8).toBeLessThan(0.27 * 4 * w.length);
    expect(sizes.pruned).toBeLessThan(0.6 * 4 * w.length);
  });

  it('decodes each stored variant back to the dense weights it stands for, within its error bound', () => {
    const w = weights(7);
    for (const v of VARIANTS) {
      const enc = encodeVariant(v, w, spec, DEFAULT_VARIANT_OPTIONS);
      const back = decodeVariant(v, enc.bytes, w.length);
      expect(back).toEqual(enc.dense);
      let maxErr = 0;
      for (let i = 0; i < w.length; i++) if (enc.dense[i] !== 0) maxErr = Math.max(maxErr, Math.abs(enc.dense[i] - w[i]));
      expect(maxErr, v).toBeLessThan(v === 'int8' ? 0.2 / 255 : 1e-4);
    }
    expect(() => decodeVariant('pruned', new Uint8Array(10), w.length)).toThrow();
    expect(() => decodeVariant('float32', new Uint8Array(10), w.length)).toThrow();
  });

  it('magnitude pruning zeroes exactly floor(s * size) of each kernel, the smallest, and keeps biases dense', () => {
    const w = weights(3);
    const p = magnitudePrune(w, manifest, 0.7);
    const kernel = p.subarray(0, 5000);
    const zeros = kernel.filter((x) => x === 0).length;
    expect(zeros).toBe(3500);
    let maxPruned = 0;
    let minKept = Infinity;
    for (let i = 0; i < 5000; i++) {
      if (kernel[i] === 0) maxPruned = Math.max(maxPruned, Math.abs(w[i]));
      else minKept = Math.min(minKept, Math.abs(w[i]));
    }
    expect(maxPruned).toBeLessThanOrEqual(minKept);
    expect(p.subarray(5000)).toEqual(w.subarray(5000));
    expect(w.filter((x) => x === 0).length).toBeLessThan(5); // input untouched
  });

  it('prunes ties at the threshold to exactly k', () => {
    const m = buildManifest([{ name: 'k', shape: [2, 4] }]);
    const p = magnitudePrune(new Float32Array([1, 1, 1, 1, 1, 1, 2, 3]), m, 0.5);
    expect(p.filter((x) => x === 0).length).toBe(4);
  });

  it('sparse format round-trips and rejects corrupt input', () => {
    const x = new Float32Array([0, 1.5, 0, 0, -2, 0, 0, 0, 0, 3]);
    const enc = encodeSparse(x);
    expect(decodeSparse(enc, 10)).toEqual(x);
    expect(() => decodeSparse(enc, 11)).toThrow();
    const bad = enc.slice();
    bad[12] ^= 0x01;
    expect(() => decodeSparse(bad, 10)).toThrow();
  });
});

describe('rollbackTarget', () => {
  const h = (from: number | null, to: number | null, action: 'set' | 'rollback' | 'delete' = 'set') => ({ model: 'm', alias: 'a', from, to, at: 0, by: 'x', action });
  it('undoes changes like a stack', () => {
    expect(rollbackTarget([h(2, 3), h(1, 2), h(null, 1)])).toBe(2);
    expect(rollbackTarget([h(3, 2, 'rollback'), h(2, 3), h(1, 2), h(null, 1)])).toBe(1);
    expect(rollbackTarget([h(2, 1, 'rollback'), h(3, 2, 'rollback'), h(2, 3), h(1, 2), h(null, 1)])).toBeNull();
    expect(rollbackTarget([h(1, 5), h(2, 1, 'rollback'), h(1, 2), h(null, 1)])).toBe(1);
    expect(rollbackTarget([h(3, null, 'delete'), h(2, 3)])).toBe(3);
    expect(rollbackTarget([h(3, 3), h(2, 3)])).toBe(2);
    expect(rollbackTarget([])).toBeNull();
  });
});

describe('kthSmallest', () => {
  it('agrees with sorting on random, sorted, reversed and constant inputs', async () => {
    const { kthSmallest } = await import('../../server/src/registry/magnitude-prune.js');
    let s = 9;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const inputs = [
      Float32Array.from({ length: 1001 }, rand),
      Float32Array.from({ length: 500 }, (_, i) => i),
      Float32Array.from({ length: 500 }, (_, i) => -i),
      new Float32Array(300).fill(2),
      Float32Array.from({ length: 777 }, () => Math.floor(rand() * 5)),
      new Float32Array([3]),
    ];
    for (const x of inputs) {
      const sorted = x.slice().sort();
      for (const k of [0, 1, x.length >> 1, x.length - 2, x.length - 1].filter((k) => k >= 0 && k < x.length)) {
        expect(kthSmallest(x.slice(), k)).toBe(sorted[k]);
      }
    }
  });
});
