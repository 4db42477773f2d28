import { l2Norm } from '../update-checks.js';

/**
 * L2 clipping: x <- x * min(1, bound / ||x||), in place. Returns the norm before clipping and
 * whether x was scaled. Callers own x (FitResult deltas are owned by the aggregator).
 */
export function clipInPlace(x: Float32Array, bound: number): { norm: number; clipped: boolean } {
  const norm = l2Norm(x);
  if (norm <= bound) return { norm, clipped: false };
  const s = bound / norm;
  for (let i = 0; i < x.length; i++) x[i] *= s;
  return { norm, clipped: true };
}
