/**
 * Fixed-point quantization of real vectors into integers modulo 2^32 (the ring secure
 * aggregation masks in), and back from a sum. Contract, for `bits` = B and range c:
 *   q(x) = round(clamp(x, -c, c) * s) with s = (2^(B-1) - 1) / c, stored two's complement mod 2^32;
 *   the sum of n such words, read back signed and divided by s, differs from the sum of the
 *   clamped inputs by at most n / (2 s) per coordinate, provided n * (2^(B-1) - 1) < 2^31 (no
 *   wrap-around: `maxSummands` gives the largest n).
 */
export function scaleOf(bits: number, range: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > 31) throw new RangeError('bits must be an integer in 2..31');
  if (!(range > 0) || !Number.isFinite(range)) throw new RangeError('range must be positive and finite');
  return (2 ** (bits - 1) - 1) / range;
}

/** The largest number of quantized vectors whose sum cannot wrap around 2^32. */
export function maxSummands(bits: number): number {
  return Math.floor((2 ** 31 - 1) / (2 ** (bits - 1) - 1));
}

/** Quantize `x` (clamped to [-range, range]) into `out[offset..]`, mod 2^32. */
export function quantizeInto(out: Uint32Array, offset: number, x: ArrayLike<number>, bits: number, range: number): void {
  const s = scaleOf(bits, range);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const c = v > range ? range : v < -range ? -range : Number.isNaN(v) ? 0 : v;
    out[offset + i] = Math.round(c * s) >>> 0;
  }
}

/** Read `length` summed words from `offset` as signed integers and divide by the scale. */
export function dequantizeSum(sum: Uint32Array, offset: number, length: number, bits: number, range: number): Float64Array {
  const s = scaleOf(bits, range);
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = (sum[offset + i] | 0) / s;
  return out;
}

/** Largest error per coordinate of `dequantizeSum` over `n` summands (rounding only; clamping is the caller's). */
export function sumErrorBound(n: number, bits: number, range: number): number {
  return n / (2 * scaleOf(bits, range));
}

/** acc += v mod 2^32 (sign +1) or acc -= v mod 2^32 (sign -1), in place. */
export function addMod(acc: Uint32Array, v: Uint32Array, sign: 1 | -1 = 1): void {
  if (v.length !== acc.length) throw new RangeError(`length ${v.length} != ${acc.length}`);
  if (sign === 1) for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] + v[i]) >>> 0;
  else for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] - v[i]) >>> 0;
}
