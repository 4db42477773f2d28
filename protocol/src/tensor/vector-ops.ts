/** Small loops over flat vectors shared by devices and the coordinator (one implementation each). */

export function l2Norm(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/**
 * L2 clipping: x <- x * min(1, bound / ||x||), in place. Returns the norm before clipping and
 * whether x was scaled. The caller must own x.
 */
export function clipInPlace(x: Float32Array, bound: number): { norm: number; clipped: boolean } {
  const norm = l2Norm(x);
  if (norm <= bound) return { norm, clipped: false };
  const s = bound / norm;
  for (let i = 0; i < x.length; i++) x[i] *= s;
  return { norm, clipped: true };
}
