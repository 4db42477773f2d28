import { AppError } from '../errors.js';
import { HEADER_BYTES, expectHeader, writeHeader, type CodecOptions, type DeltaCodec } from './codec.js';
import { kthSmallest } from './select.js';

/**
 * Top-k sparsification (Aji & Heafield 2017; Lin et al. 2018, "Deep Gradient Compression"):
 * keep the k = ceil(fraction * n) coordinates of largest magnitude (at least 1 when n > 0),
 * exactly; the decoder fills the rest with zeros. Ties at the threshold go to the lower index, so
 * encoding is deterministic.
 *
 * Layout after the 12-byte header (param = fraction as f32): k as u32 LE, then k u32 LE indices,
 * strictly increasing, then k f32 LE values. Size: 16 + 8k bytes. k is stored (not implied by the
 * length) so that a body cut by whole entries is caught rather than misread.
 * Error bound (`maxAbsError`): the largest magnitude among the dropped coordinates, i.e. the
 * (k+1)-th largest |x_i| (0 when k = n). Kept values are exact.
 * NaN or Infinity in the input: encode throws FL_ERR_REPORT_NON_FINITE (magnitudes cannot be
 * ranked). The decoder rejects out-of-range or unordered indices as FL_ERR_CODEC_CORRUPT; values
 * pass through, so non-finite ones reach the coordinator's finite check.
 * Pair with ErrorFeedback on the client so dropped mass is sent in later rounds.
 */
export const DEFAULT_TOPK_FRACTION = 0.01;
const BODY_AT = HEADER_BYTES + 4;

function fractionOf(options?: CodecOptions): number {
  const f = options?.fraction ?? DEFAULT_TOPK_FRACTION;
  if (!(f > 0 && f <= 1)) throw new RangeError('topk fraction must be in (0, 1]');
  return f;
}

/** Number of coordinates kept for length n. */
export function topkCount(n: number, fraction: number): number {
  if (n === 0) return 0;
  return Math.min(n, Math.max(1, Math.ceil(fraction * n - 1e-9)));
}


function magnitudes(delta: Float32Array): Float32Array {
  const m = new Float32Array(delta.length);
  for (let i = 0; i < delta.length; i++) {
    const v = delta[i];
    if (!Number.isFinite(v)) throw new AppError('FL_ERR_REPORT_NON_FINITE', { index: i });
    m[i] = Math.abs(v);
  }
  return m;
}

/** Indices (ascending) of the k largest |delta_i|, ties to the lower index. */
export function topkIndices(delta: Float32Array, k: number): Uint32Array {
  const n = delta.length;
  const out = new Uint32Array(k);
  if (k >= n) {
    for (let i = 0; i < n; i++) out[i] = i;
    magnitudes(delta);
    return out;
  }
  if (k === 0) return out;
  const thr = kthSmallest(magnitudes(delta), n - k);
  let above = 0;
  for (let i = 0; i < n; i++) if (Math.abs(delta[i]) > thr) above++;
  let ties = k - above;
  let o = 0;
  for (let i = 0; i < n && o < k; i++) {
    const a = Math.abs(delta[i]);
    if (a > thr || (a === thr && ties-- > 0)) out[o++] = i;
  }
  return out;
}

export const topkCodec: DeltaCodec = {
  name: 'topk',
  encode(delta, options) {
    const fraction = fractionOf(options);
    const k = topkCount(delta.length, fraction);
    const idx = topkIndices(delta, k);
    const out = new Uint8Array(BODY_AT + 8 * k);
    writeHeader(out, 'topk', delta.length, fraction);
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    dv.setUint32(HEADER_BYTES, k, true);
    const valuesAt = BODY_AT + 4 * k;
    for (let j = 0; j < k; j++) {
      dv.setUint32(BODY_AT + 4 * j, idx[j], true);
      dv.setFloat32(valuesAt + 4 * j, delta[idx[j]], true);
    }
    return out;
  },
  decode(bytes, expectedLength) {
    expectHeader(bytes, 'topk', expectedLength);
    if (bytes.byteLength < BODY_AT) throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'missing entry count' });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const k = dv.getUint32(HEADER_BYTES, true);
    if (k > expectedLength) throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'more entries than coordinates', k });
    if (bytes.byteLength !== BODY_AT + 8 * k) {
      throw new AppError('FL_ERR_CODEC_CORRUPT', { expectedBytes: BODY_AT + 8 * k, got: bytes.byteLength });
    }
    const valuesAt = BODY_AT + 4 * k;
    const out = new Float32Array(expectedLength);
    let prev = -1;
    for (let j = 0; j < k; j++) {
      const i = dv.getUint32(BODY_AT + 4 * j, true);
      if (i <= prev || i >= expectedLength) throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'index out of order or range', index: i });
      prev = i;
      out[i] = dv.getFloat32(valuesAt + 4 * j, true);
    }
    return out;
  },
  maxAbsError(delta, options) {
    const n = delta.length;
    const k = topkCount(n, fractionOf(options));
    for (let i = 0; i < n; i++) if (!Number.isFinite(delta[i])) return NaN;
    if (k >= n) return 0;
    return kthSmallest(magnitudes(delta), n - k - 1);
  },
};
