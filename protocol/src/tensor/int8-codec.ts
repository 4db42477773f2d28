import { AppError } from '../errors.js';
import { HEADER_BYTES, expectHeader, writeHeader, type CodecOptions, type DeltaCodec } from './codec.js';

/**
 * 8-bit affine quantisation with one (min, scale) pair per block of `blockSize` floats
 * (QSGD-style stochastic rounding, Alistarh et al. 2017, when `options.random` is given).
 *
 * Layout after the 12-byte header (param = blockSize):
 *   nb = ceil(n / blockSize) pairs of f32 LE (min, scale), then n u8 codes.
 *   x_hat = min + code * scale. Size: 12 + 8 * nb + n bytes.
 * Rounding: nearest (deterministic) without `random`; with it, code = floor(t + random()), which
 * is unbiased (E[x_hat] = x).
 * Error bound per coordinate (`maxAbsError`, maximised over blocks): scale/2 deterministic,
 * scale stochastic, plus 2^-23 * max|x| in the block for float32 rounding of the result, where
 * scale ~= (max - min) / 255 of the block.
 * NaN or Infinity in the input: encode throws FL_ERR_REPORT_NON_FINITE (a scale cannot carry
 * them). The decoder rejects non-finite or negative scales as FL_ERR_CODEC_CORRUPT.
 */
export const DEFAULT_INT8_BLOCK = 256;
const MAX_BLOCK = 1 << 24;

function blockSizeOf(options?: CodecOptions): number {
  const b = options?.blockSize ?? DEFAULT_INT8_BLOCK;
  if (!Number.isInteger(b) || b < 1 || b > MAX_BLOCK) throw new RangeError(`int8 blockSize must be an integer in [1, ${MAX_BLOCK}]`);
  return b;
}

function nextUpF32(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] += 1; // x >= 0 here: the next representable float32 above
  return f[0];
}

/** Block min and a float32 scale such that min + 255 * scale >= max. */
function blockParams(delta: Float32Array, start: number, end: number): { lo: number; scale: number; maxAbs: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start; i < end; i++) {
    const v = delta[i];
    if (!Number.isFinite(v)) throw new AppError('FL_ERR_REPORT_NON_FINITE', { index: i });
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let scale = Math.fround((hi - lo) / 255);
  while (lo + 255 * scale < hi) scale = nextUpF32(scale);
  return { lo, scale, maxAbs: Math.max(Math.abs(lo), Math.abs(hi)) };
}

export const int8Codec: DeltaCodec = {
  name: 'int8',
  encode(delta, options) {
    const bs = blockSizeOf(options);
    const random = options?.random;
    const n = delta.length;
    const nb = Math.ceil(n / bs);
    const codesAt = HEADER_BYTES + 8 * nb;
    const out = new Uint8Array(codesAt + n);
    writeHeader(out, 'int8', n, bs);
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let b = 0; b < nb; b++) {
      const start = b * bs;
      const end = Math.min(n, start + bs);
      const { lo, scale } = blockParams(delta, start, end);
      dv.setFloat32(HEADER_BYTES + 8 * b, lo, true);
      dv.setFloat32(HEADER_BYTES + 8 * b + 4, scale, true);
      const inv = scale > 0 ? 1 / scale : 0;
      for (let i = start; i < end; i++) {
        const t = (delta[i] - lo) * inv;
        let q = random ? Math.floor(t + random()) : Math.round(t);
        if (q < 0) q = 0;
        else if (q > 255) q = 255;
        out[codesAt + i] = q;
      }
    }
    return out;
  },
  decode(bytes, expectedLength) {
    const h = expectHeader(bytes, 'int8', expectedLength);
    const bs = h.param;
    if (!Number.isInteger(bs) || bs < 1 || bs > MAX_BLOCK) throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'bad block size', blockSize: bs });
    const n = expectedLength;
    const nb = Math.ceil(n / bs);
    const codesAt = HEADER_BYTES + 8 * nb;
    if (bytes.byteLength !== codesAt + n) throw new AppError('FL_ERR_CODEC_CORRUPT', { expectedBytes: codesAt + n, got: bytes.byteLength });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(n);
    for (let b = 0; b < nb; b++) {
      const lo = dv.getFloat32(HEADER_BYTES + 8 * b, true);
      const scale = dv.getFloat32(HEADER_BYTES + 8 * b + 4, true);
      if (!Number.isFinite(lo) || !Number.isFinite(scale) || scale < 0) {
        throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'bad block scale', block: b });
      }
      const end = Math.min(n, (b + 1) * bs);
      for (let i = b * bs; i < end; i++) out[i] = lo + bytes[codesAt + i] * scale;
    }
    return out;
  },
  maxAbsError(delta, options) {
    const bs = blockSizeOf(options);
    const factor = options?.random ? 1 : 0.5;
    let bound = 0;
    for (let start = 0; start < delta.length; start += bs) {
      const end = Math.min(delta.length, start + bs);
      for (let i = start; i < end; i++) if (!Number.isFinite(delta[i])) return NaN;
      const { scale, maxAbs } = blockParams(delta, start, end);
      const b = factor * scale + maxAbs * 2 ** -23;
      if (b > bound) bound = b;
    }
    return bound;
  },
};
