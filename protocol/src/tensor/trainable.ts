import { AppError } from '../errors.js';
import { manifestLength, type WeightManifest } from './manifest.js';

/**
 * Trainable subsets. A manifest entry with `trainable: false` is frozen: devices never change it
 * and never send it. The *trainable vector* is the concatenation, in manifest order, of the
 * entries that are not frozen; deltas, codecs, strategies, screening and DP all work on it, while
 * the registry stores and serves full models. Contract: `scatterTrainable(full,
 * gatherTrainable(full, m), m)` equals `full`, and frozen entries of the result are bit-identical
 * to `full`. When nothing is frozen both functions return their input (no copy).
 */
export function isFullyTrainable(m: WeightManifest): boolean {
  return m.every((s) => s.trainable !== false);
}

export function trainableLength(m: WeightManifest): number {
  let n = 0;
  for (const s of m) if (s.trainable !== false) n += s.size;
  return n;
}

/** The trainable vector of a full weight vector. */
export function gatherTrainable(full: Float32Array, m: WeightManifest): Float32Array {
  if (full.length !== manifestLength(m)) throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { expected: manifestLength(m), got: full.length });
  if (isFullyTrainable(m)) return full;
  const out = new Float32Array(trainableLength(m));
  let o = 0;
  for (const s of m) {
    if (s.trainable === false) continue;
    out.set(full.subarray(s.offset, s.offset + s.size), o);
    o += s.size;
  }
  return out;
}

/** A full vector: `full`'s frozen entries with `trainable` laid over the others (a new array unless nothing is frozen). */
export function scatterTrainable(full: Float32Array, trainable: Float32Array, m: WeightManifest): Float32Array {
  if (trainable.length !== trainableLength(m)) throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { expected: trainableLength(m), got: trainable.length });
  if (isFullyTrainable(m)) return trainable;
  const out = full.slice();
  let o = 0;
  for (const s of m) {
    if (s.trainable === false) continue;
    out.set(trainable.subarray(o, o + s.size), s.offset);
    o += s.size;
  }
  return out;
}
