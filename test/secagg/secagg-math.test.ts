import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  addMod,
  decodeSum,
  encodeInput,
  expandMask,
  generateKeyPair,
  neighbourGraph,
  open,
  pairSeed,
  pairSign,
  quantizeInto,
  dequantizeSum,
  maxSummands,
  reconstruct,
  seal,
  split,
  sumErrorBound,
  type SecAggClientConfig,
} from '@flotilla/protocol';
import { createRng } from '../../server/src/fl/rng.js';

/** Known answer of the mask PRG (AES-256-CTR, seed 0..31): pins the wire format; the browser test checks the same words. */
const PRG_SEED = Uint8Array.from({ length: 32 }, (_, i) => i);

describe('Shamir sharing over GF(2^521 - 1)', () => {
  const secret = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
  const xs = [1, 2, 3, 4, 5, 6, 7];

  it('any t shares rebuild the secret; fewer are refused', () => {
    const shares = split(secret, 4, xs);
    expect(shares).toHaveLength(7);
    for (const pick of [[0, 1, 2, 3], [3, 4, 5, 6], [0, 2, 4, 6], [6, 1, 5, 0]]) {
      expect(Buffer.from(reconstruct(pick.map((i) => shares[i]), 4))).toEqual(Buffer.from(secret));
    }
    expect(Buffer.from(reconstruct(shares, 4))).toEqual(Buffer.from(secret));
    expect(() => reconstruct(shares.slice(0, 3), 4)).toThrow(RangeError);
  });

  it('t - 1 shares do not determine the secret: two sharings agree on t - 1 points for different secrets', () => {
    // With t - 1 shares fixed, every secret stays possible: a second polynomial through the same
    // t - 1 points and another secret exists, so the shares carry no information about which.
    const a = split(secret, 3, xs);
    const other = Uint8Array.from(secret, (b) => b ^ 0xff);
    const b = split(other, 3, xs);
    // Two of `a`'s shares plus one of `b`'s: not the secret (the result may not even fit 32 bytes).
    let r: Uint8Array | null = null;
    try {
      r = reconstruct([a[0], a[1], b[2]], 3);
    } catch {
      r = null;
    }
    expect(r === null || !Buffer.from(r).equals(Buffer.from(secret))).toBe(true);
  });

  it('refuses repeated or out-of-range points and a threshold above the shares', () => {
    expect(() => split(secret, 2, [1, 1, 2])).toThrow(RangeError);
    expect(() => split(secret, 2, [0, 1])).toThrow(RangeError);
    expect(() => split(secret, 4, [1, 2, 3])).toThrow(RangeError);
  });
});

describe('masks', () => {
  it('the PRG is deterministic and pinned', async () => {
    const a = await expandMask(PRG_SEED, 6);
    const b = await expandMask(PRG_SEED, 6);
    expect([...a]).toEqual([...b]);
    expect([...(await expandMask(PRG_SEED, 2))]).toEqual([...a.slice(0, 2)]);
    expect([...a]).toEqual(PRG_WORDS);
    // The same keystream from OpenSSL's AES-256-CTR (node:crypto), read little-endian.
    const c = createCipheriv('aes-256-ctr', PRG_SEED, Buffer.alloc(16));
    const ks = Buffer.concat([c.update(Buffer.alloc(24)), c.final()]);
    expect(Array.from({ length: 6 }, (_, i) => ks.readUInt32LE(4 * i))).toEqual(PRG_WORDS);
  });

  it('pairwise masks from X25519 agree from both sides and cancel exactly in the sum mod 2^32', async () => {
    const n = 5;
    const L = 257;
    const keys = await Promise.all(Array.from({ length: n }, () => generateKeyPair()));
    const inputs = Array.from({ length: n }, (_, i) => Uint32Array.from({ length: L }, (_, j) => (i * 7919 + j * 104729) >>> 0));
    const sum = new Uint32Array(L);
    const selfMasks: Uint8Array[] = [];
    for (let u = 0; u < n; u++) {
      const y = inputs[u].slice();
      const b = crypto.getRandomValues(new Uint8Array(32));
      selfMasks.push(b);
      addMod(y, await expandMask(b, L));
      for (let v = 0; v < n; v++) {
        if (v === u) continue;
        const s = await pairSeed(keys[u].privateKey, keys[v].publicKey, 't', 1);
        expect(Buffer.from(s)).toEqual(Buffer.from(await pairSeed(keys[v].privateKey, keys[u].publicKey, 't', 1)));
        addMod(y, await expandMask(s, L), pairSign(u + 1, v + 1));
      }
      expect([...y]).not.toEqual([...inputs[u]]);
      addMod(sum, y);
    }
    for (const b of selfMasks) addMod(sum, await expandMask(b, L), -1);
    const plain = new Uint32Array(L);
    for (const x of inputs) addMod(plain, x);
    expect([...sum]).toEqual([...plain]);
  });

  it('share pairs are sealed with authenticated encryption: a flipped bit or another receiver fails', async () => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const aad = new TextEncoder().encode('flotilla-secagg|t|1|1|2');
    const box = await seal(key, new Uint8Array([1, 2, 3]), aad);
    expect([...(await open(key, box, aad))]).toEqual([1, 2, 3]);
    const bad = box.slice();
    bad[20] ^= 1;
    await expect(open(key, bad, aad)).rejects.toThrow();
    await expect(open(key, box, new TextEncoder().encode('flotilla-secagg|t|1|1|3'))).rejects.toThrow();
  });
});

describe('quantization', () => {
  it('a sum of n quantized vectors is within n / (2 s) of the real sum, and never wraps below maxSummands', () => {
    const rng = createRng(7);
    for (const bits of [8, 12, 16, 20]) {
      const range = 0.5;
      const n = Math.min(50, maxSummands(bits));
      const L = 200;
      const sum = new Uint32Array(L);
      const real = new Float64Array(L);
      for (let k = 0; k < n; k++) {
        const x = Float64Array.from({ length: L }, () => (rng() * 2 - 1) * range);
        x[0] = range; // the extremes add up without wrapping
        const q = new Uint32Array(L);
        quantizeInto(q, 0, x, bits, range);
        addMod(sum, q);
        for (let i = 0; i < L; i++) real[i] += x[i];
      }
      const back = dequantizeSum(sum, 0, L, bits, range);
      const bound = sumErrorBound(n, bits, range);
      let worst = 0;
      for (let i = 0; i < L; i++) worst = Math.max(worst, Math.abs(back[i] - real[i]));
      expect(worst).toBeLessThanOrEqual(bound + 1e-12);
      expect(back[0]).toBeCloseTo(n * range, 6);
    }
  });

  it('weights by examples through a masked coordinate: the decoded mean is the example-weighted mean', () => {
    const cfg: SecAggClientConfig = { protocol: 'secagg', bits: 20, clipRange: 1, maxWeight: 100, metricRange: 10, metricNames: ['loss'] };
    const deltas = [Float32Array.of(0.5, -0.25), Float32Array.of(-0.1, 0.3), Float32Array.of(0.2, 0.2)];
    const counts = [10, 40, 50];
    const losses = [1, 2, 3];
    const sum = new Uint32Array(4);
    deltas.forEach((d, k) => addMod(sum, encodeInput(d, counts[k], { loss: losses[k] }, cfg)));
    const out = decodeSum(sum, 2, cfg);
    expect(out.weight).toBeCloseTo(1, 5);
    for (let i = 0; i < 2; i++) expect(out.mean[i]).toBeCloseTo(deltas.reduce((s, d, k) => s + d[i] * counts[k], 0) / 100, 5);
    expect(out.metrics.loss).toBeCloseTo((10 + 80 + 150) / 100, 4);
  });
});

describe('neighbour graph', () => {
  it('is symmetric and k-regular for SecAgg+, complete for SecAgg', () => {
    const rng = createRng(3);
    for (const [n, k] of [[10, 4], [31, 6], [100, 14], [8, 7]] as const) {
      const g = neighbourGraph(n, k, rng);
      g.forEach((l, i) => {
        expect(l.length).toBe(Math.min(k, n - 1));
        expect(l.includes(i)).toBe(false);
        for (const j of l) expect(g[j].includes(i)).toBe(true);
      });
    }
    expect(neighbourGraph(5, 'complete', rng).every((l) => l.length === 4)).toBe(true);
  });
});

const PRG_WORDS = [3053490418, 3500099882, 1788539817, 2155294429, 2926992880, 3852450122];
