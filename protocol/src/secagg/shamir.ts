/**
 * Shamir t-of-n secret sharing over the prime field GF(p), p = 2^521 - 1 (a Mersenne prime, so
 * any 32-byte secret is one field element). Used by secure aggregation (docs/secure-aggregation.md)
 * to share each device's mask-key and self-mask seed with its neighbours. Runs unchanged in Node
 * and browsers: BigInt arithmetic and `globalThis.crypto.getRandomValues` only.
 *
 * Contracts: `split(secret, t, xs)` gives one share per distinct x in 1..65535; any t of them give
 * back the secret through `reconstruct`, while fewer than t are refused (RangeError) and reveal
 * nothing about it (a random degree t-1 polynomial). Shares are SHARE_BYTES bytes, big-endian.
 */
export const PRIME = (1n << 521n) - 1n;
export const SHARE_BYTES = 66;
export const SECRET_BYTES = 32;

export interface Share {
  /** The evaluation point: the receiving device's index in the round (1-based). */
  x: number;
  y: Uint8Array;
}

function mod(a: bigint): bigint {
  const r = a % PRIME;
  return r < 0n ? r + PRIME : r;
}

function toBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function toBytes(v: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n) throw new RangeError('value does not fit');
  return out;
}

/** A uniform field element from the platform's CSPRNG (rejection sampling over 521 bits). */
function randomElement(): bigint {
  const buf = new Uint8Array(SHARE_BYTES);
  for (;;) {
    globalThis.crypto.getRandomValues(buf);
    buf[0] &= 0x01; // 528 bits -> 521
    const v = toBig(buf);
    if (v < PRIME) return v;
  }
}

function checkPoints(xs: readonly number[]): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isInteger(x) || x < 1 || x > 65535) throw new RangeError(`share point ${x} is not an integer in 1..65535`);
    if (seen.has(x)) throw new RangeError(`share point ${x} repeated`);
    seen.add(x);
  }
}

/** Shares of `secret` (SECRET_BYTES bytes) at the points `xs`; any `t` of them reconstruct it. */
export function split(secret: Uint8Array, t: number, xs: readonly number[]): Share[] {
  if (secret.length !== SECRET_BYTES) throw new RangeError(`secret must be ${SECRET_BYTES} bytes`);
  if (!Number.isInteger(t) || t < 1 || t > xs.length) throw new RangeError(`threshold ${t} must be in 1..${xs.length}`);
  checkPoints(xs);
  const coeffs = [toBig(secret)];
  for (let i = 1; i < t; i++) coeffs.push(randomElement());
  return xs.map((x) => {
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coeffs.length - 1; i >= 0; i--) y = mod(y * bx + coeffs[i]);
    return { x, y: toBytes(y, SHARE_BYTES) };
  });
}

function powMod(b: bigint, e: bigint): bigint {
  let r = 1n;
  b = mod(b);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % PRIME;
    b = (b * b) % PRIME;
    e >>= 1n;
  }
  return r;
}

/**
 * Lagrange coefficients at 0 for a set of points, cached by the point set: in a round most
 * secrets are rebuilt from shares held by the same surviving devices, so each set is solved once
 * and every further secret costs t multiplications.
 */
const lagrangeCache = new Map<string, bigint[]>();

function lagrangeAtZero(xs: readonly number[]): bigint[] {
  const key = xs.join(',');
  const hit = lagrangeCache.get(key);
  if (hit) return hit;
  const bx = xs.map(BigInt);
  const nums: bigint[] = [];
  const dens: bigint[] = [];
  bx.forEach((xj, j) => {
    let num = 1n;
    let den = 1n;
    for (let m = 0; m < bx.length; m++) {
      if (m === j) continue;
      num = (num * bx[m]) % PRIME;
      den = mod(den * (bx[m] - xj));
    }
    nums.push(num);
    dens.push(den);
  });
  // One inversion for all denominators (prefix products), not one per point.
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const d of dens) {
    prefix.push(acc);
    acc = (acc * d) % PRIME;
  }
  let inv = powMod(acc, PRIME - 2n);
  const out = new Array<bigint>(bx.length);
  for (let j = bx.length - 1; j >= 0; j--) {
    out[j] = (nums[j] * ((inv * prefix[j]) % PRIME)) % PRIME;
    inv = (inv * dens[j]) % PRIME;
  }
  if (lagrangeCache.size > 256) lagrangeCache.clear();
  lagrangeCache.set(key, out);
  return out;
}

/** The secret from at least `t` shares (the first t by point are used); RangeError below t. */
export function reconstruct(shares: readonly Share[], t: number): Uint8Array {
  if (shares.length < t) throw new RangeError(`${shares.length} shares, ${t} needed`);
  const used = [...shares].sort((a, b) => a.x - b.x).slice(0, t);
  checkPoints(used.map((s) => s.x));
  const lambda = lagrangeAtZero(used.map((s) => s.x));
  let v = 0n;
  used.forEach((s, i) => {
    if (s.y.length !== SHARE_BYTES) throw new RangeError(`share must be ${SHARE_BYTES} bytes`);
    v = (v + lambda[i] * toBig(s.y)) % PRIME;
  });
  return toBytes(v, SECRET_BYTES);
}
