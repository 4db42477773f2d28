import { AppError } from '../errors.js';
import { HEADER_BYTES, expectHeader, writeHeader, type DeltaCodec } from './codec.js';

/**
 * IEEE 754 binary16 (half precision), little-endian, round to nearest, ties to even.
 * Size: 12 + 2n bytes (header param 0).
 *
 * Error bound per coordinate x (what `maxAbsError` returns, maximised over the input):
 *   - |x| < 2^-14 (half subnormal range): at most 2^-25 (half the subnormal spacing 2^-24);
 *   - 2^-14 <= |x| <= 65504: at most 2^-11 * |x| (half an ulp, 10 mantissa bits);
 *   - |x| > 65504 (finite): saturated to +-65504 (never turned into Infinity), error |x| - 65504.
 * NaN and +-Infinity are preserved (NaN as a quiet NaN), so the coordinator's finite check
 * still rejects such updates after decoding; `maxAbsError` is NaN for such input.
 */
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const HALF_MAX = 65504;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** float32 -> binary16 bits, RNE, finite overflow saturates to 0x7bff. */
export function toHalfBits(x: number): number {
  F32[0] = x;
  return halfFromFloatBits(U32[0]);
}

/** The same conversion from the float32 bit pattern. */
function halfFromFloatBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7bff;
  if (e <= 0) {
    // Result is subnormal (or zero, or rounds up to the smallest normal 0x0400).
    const s = 14 - e; // value = m * 2^(exp-150) = (m >> s) * 2^-24
    if (s > 24) return sign;
    const m = mant | 0x800000;
    let q = m >>> s;
    const r = m & ((1 << s) - 1);
    const half = 1 << (s - 1);
    if (r > half || (r === half && (q & 1) === 1)) q++;
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const r = mant & 0x1fff;
  if (r > 0x1000 || (r === 0x1000 && (q & 1) === 1)) q++;
  if (q >= 0x7c00) q = 0x7bff; // rounding carried into the infinity exponent: saturate
  return sign | q;
}

let table: Float32Array | undefined;
/** binary16 bits -> float32 value, via a 64K-entry table built on first use. */
export function fromHalfBits(h: number): number {
  return halfTable()[h & 0xffff];
}

function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const sign = i & 0x8000 ? -1 : 1;
      const exp = (i >>> 10) & 0x1f;
      const mant = i & 0x3ff;
      let v: number;
      if (exp === 0) v = mant * 2 ** -24;
      else if (exp === 0x1f) v = mant === 0 ? Infinity : NaN;
      else v = (1 + mant / 1024) * 2 ** (exp - 15);
      table[i] = sign * v;
    }
  }
  return table;
}

export const f16Codec: DeltaCodec = {
  name: 'f16',
  encode(delta) {
    const out = new Uint8Array(HEADER_BYTES + 2 * delta.length);
    writeHeader(out, 'f16', delta.length);
    const bits = new Uint32Array(delta.buffer, delta.byteOffset, delta.length);
    if (LITTLE_ENDIAN) {
      const halves = new Uint16Array(out.buffer, HEADER_BYTES, delta.length);
      for (let i = 0; i < bits.length; i++) halves[i] = halfFromFloatBits(bits[i]);
      return out;
    }
    for (let i = 0, o = HEADER_BYTES; i < bits.length; i++, o += 2) {
      const h = halfFromFloatBits(bits[i]);
      out[o] = h & 0xff;
      out[o + 1] = h >>> 8;
    }
    return out;
  },
  decode(bytes, expectedLength) {
    expectHeader(bytes, 'f16', expectedLength);
    const want = HEADER_BYTES + 2 * expectedLength;
    if (bytes.byteLength !== want) throw new AppError('FL_ERR_CODEC_CORRUPT', { expectedBytes: want, got: bytes.byteLength });
    const out = new Float32Array(expectedLength);
    const t = halfTable();
    if (LITTLE_ENDIAN && (bytes.byteOffset + HEADER_BYTES) % 2 === 0) {
      const halves = new Uint16Array(bytes.buffer, bytes.byteOffset + HEADER_BYTES, expectedLength);
      for (let i = 0; i < expectedLength; i++) out[i] = t[halves[i]];
      return out;
    }
    for (let i = 0, o = HEADER_BYTES; i < expectedLength; i++, o += 2) out[i] = t[bytes[o] | (bytes[o + 1] << 8)];
    return out;
  },
  maxAbsError(delta) {
    let bound = 0;
    for (let i = 0; i < delta.length; i++) {
      const a = Math.abs(delta[i]);
      if (!Number.isFinite(a)) return NaN;
      const b = a > HALF_MAX ? a - HALF_MAX : Math.max(2 ** -25, a * 2 ** -11);
      if (b > bound) bound = b;
    }
    return bound;
  },
};
