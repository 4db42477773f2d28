/**
 * Seeded random numbers for the simulator (partitions, fault injection), so that a run is
 * repeatable under `--seed`. mulberry32: fast, 32-bit state, not cryptographic.
 * The generators themselves are the FL core's (one implementation); partition helpers live here.
 */
import { createRng, gamma, gaussian, type Rng } from '@flotilla/server/rng';

export { createRng, gamma, gaussian, type Rng };

/** Derive an independent stream for a sub-purpose (e.g. per device) from a seed. */
export function deriveSeed(seed: number, salt: number): number {
  let h = (seed ^ Math.imul(salt + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** In-place Fisher-Yates shuffle. */
export function shuffle<T extends { length: number; [i: number]: number }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** One draw from a symmetric Dirichlet(alpha) over k categories. */
export function dirichlet(k: number, alpha: number, rng: Rng): Float64Array {
  const p = new Float64Array(k);
  let s = 0;
  for (let i = 0; i < k; i++) {
    p[i] = gamma(alpha, rng);
    s += p[i];
  }
  if (s === 0) {
    // Underflow at tiny alpha: all mass on one category, chosen at random.
    p[Math.floor(rng() * k)] = 1;
    return p;
  }
  for (let i = 0; i < k; i++) p[i] /= s;
  return p;
}
