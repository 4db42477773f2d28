import { AppError } from '@flotilla/protocol';
import type { WeightManifest } from '@flotilla/protocol';
import { kthSmallest } from '@flotilla/protocol';

/**
 * Magnitude pruning (Han et al. 2015, "Learning both Weights and Connections for Efficient
 * Neural Networks"), one-shot and per tensor: in every tensor of rank >= 2 (kernels; biases and
 * other vectors are kept dense, as is usual) the `floor(sparsity * size)` entries of smallest
 * magnitude become zero. Returns a new array; the input is not changed.
 */
export function magnitudePrune(weights: Float32Array, manifest: WeightManifest, sparsity: number): Float32Array {
  if (!(sparsity >= 0 && sparsity < 1)) throw new RangeError('sparsity must be in [0, 1)');
  const out = weights.slice();
  for (const w of manifest) {
    if (w.shape.length < 2 || w.size === 0) continue;
    const k = Math.floor(sparsity * w.size);
    if (k === 0) continue;
    const part = out.subarray(w.offset, w.offset + w.size);
    const mags = new Float32Array(w.size);
    for (let i = 0; i < w.size; i++) mags[i] = Math.abs(part[i]);
    const threshold = kthSmallest(mags, k - 1);
    // Zero everything strictly below the threshold, then entries equal to it until k are zero.
    let zeroed = 0;
    for (let i = 0; i < w.size; i++) {
      if (Math.abs(part[i]) < threshold) {
        part[i] = 0;
        zeroed++;
      }
    }
    for (let i = 0; i < w.size && zeroed < k; i++) {
      if (Math.abs(part[i]) === threshold) {
        part[i] = 0;
        zeroed++;
      }
    }
  }
  return out;
}

export { kthSmallest } from '@flotilla/protocol';

/**
 * Sparse storage of a mostly-zero vector ("FLSP"):
 *   [0,4) magic "FLSP" · [4,8) u32 LE element count n · [8,12) u32 LE non-zeros nnz ·
 *   bitmap of n bits (bit i set = element i stored), padded to a multiple of 4 bytes ·
 *   nnz float32 LE values in index order.
 * Size: 12 + ceil(n/32)*4 + 4*nnz bytes, under the dense 4n once more than ~3% are zero.
 */
const MAGIC = [0x46, 0x4c, 0x53, 0x50];

export function encodeSparse(x: Float32Array): Uint8Array {
  const n = x.length;
  let nnz = 0;
  for (let i = 0; i < n; i++) if (x[i] !== 0) nnz++;
  const bitmapBytes = Math.ceil(n / 32) * 4;
  const out = new Uint8Array(12 + bitmapBytes + 4 * nnz);
  out.set(MAGIC, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, n, true);
  dv.setUint32(8, nnz, true);
  let at = 12 + bitmapBytes;
  for (let i = 0; i < n; i++) {
    if (x[i] === 0) continue;
    out[12 + (i >>> 3)] |= 1 << (i & 7);
    dv.setFloat32(at, x[i], true);
    at += 4;
  }
  return out;
}

export function decodeSparse(bytes: Uint8Array, expectedLength: number): Float32Array {
  const corrupt = (why: string) => new AppError('FL_ERR_CODEC_CORRUPT', { format: 'sparse', why });
  if (bytes.byteLength < 12 || MAGIC.some((m, i) => bytes[i] !== m)) throw corrupt('bad header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(4, true);
  const nnz = dv.getUint32(8, true);
  if (n !== expectedLength) throw corrupt(`expected ${expectedLength} elements, header says ${n}`);
  const bitmapBytes = Math.ceil(n / 32) * 4;
  if (bytes.byteLength !== 12 + bitmapBytes + 4 * nnz) throw corrupt('length does not match header');
  const out = new Float32Array(n);
  let at = 12 + bitmapBytes;
  let seen = 0;
  for (let i = 0; i < n; i++) {
    if ((bytes[12 + (i >>> 3)] & (1 << (i & 7))) === 0) continue;
    if (++seen > nnz) throw corrupt('bitmap has more bits than values');
    out[i] = dv.getFloat32(at, true);
    at += 4;
  }
  if (seen !== nnz) throw corrupt('bitmap has fewer bits than values');
  return out;
}
