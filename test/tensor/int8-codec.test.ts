import { describe, expect, it } from 'vitest';
import { AppError } from '@flotilla/protocol';
import { int8Codec } from '@flotilla/protocol';
import { seeded } from './codec-suite.js';

describe('int8 codec, hand-computed cases', () => {
  it('lays out (min, scale) per block then codes, rounding to nearest', () => {
    // First block spans 255/256, so scale = 2^-8 exactly and the codes can be computed by hand.
    const x = Float32Array.from([-1, -1 + 127.5 / 256, -1 + 191.25 / 256, -1 + 255 / 256, 3, 3]);
    const bytes = int8Codec.encode(x, { blockSize: 4 });
    // 12 header + 2 blocks * 8 + 6 codes
    expect(bytes.byteLength).toBe(34);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    expect(dv.getFloat32(8, true)).toBe(4); // header param = blockSize
    const s = 1 / 256;
    expect(dv.getFloat32(12, true)).toBe(-1);
    expect(dv.getFloat32(16, true)).toBe(s);
    expect(dv.getFloat32(20, true)).toBe(3); // constant block: min 3, scale 0
    expect(dv.getFloat32(24, true)).toBe(0);
    // codes: (x - min) / scale = 0, 127.5 -> 128 (half up), 191.25 -> 191, 255; then 0, 0
    expect(Array.from(bytes.subarray(28))).toEqual([0, 128, 191, 255, 0, 0]);
    const y = int8Codec.decode(bytes, 6);
    expect(Array.from(y)).toEqual([-1, -1 + 128 * s, -1 + 191 * s, -1 + 255 * s, 3, 3].map(Math.fround));
  });

  it('stochastic rounding is unbiased and stays within one step', () => {
    const v = 76.5 / 256; // exactly halfway between codes 76 and 77 (scale 2^-8)
    const x = Float32Array.from([0, v, 255 / 256]);
    const rng = seeded(3);
    const trials = 4000;
    let sum = 0;
    const step = 1 / 256;
    for (let t = 0; t < trials; t++) {
      const y = int8Codec.decode(int8Codec.encode(x, { random: rng }), 3);
      expect(Math.abs(y[1] - v)).toBeLessThan(step);
      sum += y[1];
    }
    // codes 76 and 77 with p = 0.5 each; std of the mean = step/2/sqrt(trials)
    expect(Math.abs(sum / trials - v)).toBeLessThan((4 * step) / 2 / Math.sqrt(trials));
    // deterministic rounding is biased: 76.5 -> 77 every time
    const d = int8Codec.decode(int8Codec.encode(x), 3);
    expect(d[1]).toBe(77 * step);
  });

  it('rejects corrupt scales and block sizes', () => {
    const bytes = int8Codec.encode(Float32Array.from([1, 2, 3]), { blockSize: 2 });
    const nanScale = bytes.slice();
    new DataView(nanScale.buffer).setFloat32(16, NaN, true);
    const negScale = bytes.slice();
    new DataView(negScale.buffer).setFloat32(16, -1, true);
    const badBlock = bytes.slice();
    new DataView(badBlock.buffer).setFloat32(8, 1.5, true);
    for (const b of [nanScale, negScale, badBlock]) {
      expect(() => int8Codec.decode(b, 3)).toThrow(AppError);
      try {
        int8Codec.decode(b, 3);
      } catch (e) {
        expect((e as AppError).code).toBe('FL_ERR_CODEC_CORRUPT');
      }
    }
  });

  it('rejects invalid block sizes on encode', () => {
    expect(() => int8Codec.encode(new Float32Array(4), { blockSize: 0 })).toThrow(RangeError);
    expect(() => int8Codec.encode(new Float32Array(4), { blockSize: 2.5 })).toThrow(RangeError);
  });
});
