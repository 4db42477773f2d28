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
