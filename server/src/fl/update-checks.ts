/** Pure checks on a decoded update. The coordinator maps a false result to a coded rejection. */
export function allFinite(x: Float32Array): boolean {
  // x * 0 is 0 for finite x and NaN for NaN or +-Infinity: one branch-free pass, one test at the end.
  let acc = 0;
  for (let i = 0; i < x.length; i++) acc += x[i] * 0;
  return acc === 0;
}

export { l2Norm } from '@flotilla/protocol';

/** Largest finite float32 magnitude. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Whether every value of `x` is finite and within [-bound, bound]: one read-only pass (a NaN fails
 * both comparisons). With `bound` from `rangeHeadroom`, true implies `allFinite(x)` and
 * `firstOutOfRange(base, x) === -1`, so the report path checks both in one pass and runs the
 * exact checks only for the rare report that fails it.
 */
export function withinMagnitude(x: Float32Array, bound: number): boolean {
  if (!(bound > 0)) return false;
  const lo = -bound;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!(v <= bound && v >= lo)) return false;
  }
  return true;
}

/**
 * The largest b such that |d| <= b guarantees `base + d` stays within float32 range for every
 * coordinate: FLOAT32_MAX - max|base|, shrunk by a relative 2^-50 so that the float64 rounding of
 * the subtraction can never make it too large. 0 when `base` holds a non-finite value.
 */
export function rangeHeadroom(base: Float32Array): number {
  let m = 0;
  for (let i = 0; i < base.length; i++) {
    const a = Math.abs(base[i]);
    if (a > m) m = a;
    else if (a !== a) return 0; // NaN
  }
  const h = (FLOAT32_MAX - m) * (1 - 2 ** -50);
  return h > 0 ? h : 0;
}

/** Whether a float64 value would stay finite once stored as float32 (|x| <= FLOAT32_MAX). */
export function inFloat32Range(x: number): boolean {
  return x <= FLOAT32_MAX && x >= -FLOAT32_MAX;
}

/**
 * Index of the first coordinate where `base + delta` (computed in float64) leaves float32 range,
 * or -1 when none does: the report's contribution taken alone, as if it were the whole round.
 * When every accepted delta passes, any convex combination of them (a weighted mean, a median, a
 * trimmed mean, Krum's pick, a clipped delta) also stays in range, so aggregation cannot overflow.
 */
export function firstOutOfRange(base: Float32Array, delta: Float32Array): number {
  for (let i = 0; i < delta.length; i++) if (!inFloat32Range(base[i] + delta[i])) return i;
  return -1;
}
