import { describe, expect, it } from 'vitest';
import { f16Codec } from '@flotilla/protocol';

/** Hand-checked binary16 encodings (IEEE 754-2008), read back from the encoded bytes. */
function halfBits(x: number): number {
  const b = f16Codec.encode(Float32Array.from([x]));
  return b[12] | (b[13] << 8);
}

describe('f16 codec, hand-computed cases', () => {
  it('encodes exact values and special values', () => {
    expect(halfBits(1)).toBe(0x3c00);
    expect(halfBits(-2)).toBe(0xc000);
    expect(halfBits(0.5)).toBe(0x3800);
    expect(halfBits(65504)).toBe(0x7bff);
    expect(halfBits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(halfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(halfBits(-0)).toBe(0x8000);
    expect(halfBits(Infinity)).toBe(0x7c00);
    expect(halfBits(-Infinity)).toBe(0xfc00);
    expect(halfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(halfBits(NaN) & 0x03ff).not.toBe(0);
  });

  it('rounds to nearest, ties to even', () => {
    expect(halfBits(0.1)).toBe(0x2e66); // 0.0999755859375
    expect(halfBits(1 + 2 ** -11)).toBe(0x3c00); // tie between 0x3c00 and 0x3c01 -> even
    expect(halfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 0x3c01 and 0x3c02 -> even
    expect(halfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(halfBits(2 ** -25)).toBe(0x0000); // tie between 0 and 2^-24 -> even (0)
    expect(halfBits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 ulps -> even
    expect(halfBits(2 ** -14 - 2 ** -26)).toBe(0x0400); // rounds up into the normal range
  });

  it('saturates finite overflow to +-65504 instead of Infinity', () => {
    expect(halfBits(65519)).toBe(0x7bff);
    expect(halfBits(65520)).toBe(0x7bff); // RNE would give Infinity
    expect(halfBits(-1e9)).toBe(0xfbff);
    const x = Float32Array.from([70000]);
    expect(f16Codec.decode(f16Codec.encode(x), 1)[0]).toBe(65504);
    expect(f16Codec.maxAbsError(x)).toBe(70000 - 65504);
  });

  it('decodes every finite half exactly back to itself', () => {
    const all = new Float32Array(65536);
    const bytes = new Uint8Array(12 + 2 * 65536);
    bytes.set(f16Codec.encode(all).subarray(0, 12));
    for (let h = 0; h < 65536; h++) {
      bytes[12 + 2 * h] = h & 0xff;
      bytes[13 + 2 * h] = h >>> 8;
    }
    const values = f16Codec.decode(bytes, 65536);
    const again = f16Codec.encode(values);
    for (let h = 0; h < 65536; h++) {
      const exp = (h >>> 10) & 0x1f;
      if (exp === 0x1f && (h & 0x3ff) !== 0) continue; // NaN payloads are canonicalised
      expect(again[12 + 2 * h] | (again[13 + 2 * h] << 8)).toBe(h);
    }
    expect(values[0x3c00]).toBe(1);
    expect(values[0x0001]).toBe(2 ** -24);
    expect(values[0xfbff]).toBe(-65504);
  });

  it('decodes the same from an odd byte offset (slow path) as from an aligned one', () => {
    const x = Float32Array.from({ length: 33 }, (_, i) => (i - 16) / 7);
    const bytes = f16Codec.encode(x);
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    expect(f16Codec.decode(shifted.subarray(1), 33)).toEqual(f16Codec.decode(bytes, 33));
  });
});
