/**
 * Seeded random numbers for the simulator (partitions, fault injection), so that a run is
 * repeatable under `--seed`. mulberry32: fast, 32-bit state, not cryptographic.
 */
export type Rng = () => number;

export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

/** Standard normal (Box-Muller). */
export function gaussian(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/**
 * Gamma(shape, 1) variate: Marsaglia & Tsang (2000); for shape < 1 the boost
 * Gamma(a) = Gamma(a + 1) * U^(1/a).
 */
export function gamma(shape: number, rng: Rng): number {
  if (!(shape > 0)) throw new RangeError('gamma shape must be > 0');
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng();
    return gamma(shape + 1, rng) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = gaussian(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
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
