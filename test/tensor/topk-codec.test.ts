import { describe, expect, it } from 'vitest';
import { AppError } from '@flotilla/protocol';
import { topkCodec, topkCount } from '@flotilla/protocol';

describe('topk codec, hand-computed cases', () => {
  it('keeps the k largest magnitudes exactly and zero-fills the rest', () => {
    const x = Float32Array.from([0.1, -5, 3, 0, 5, -0.2]);
    const bytes = topkCodec.encode(x, { fraction: 0.5 });
    expect(bytes.byteLength).toBe(16 + 8 * 3);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    expect(dv.getUint32(12, true)).toBe(3);
    expect([dv.getUint32(16, true), dv.getUint32(20, true), dv.getUint32(24, true)]).toEqual([1, 2, 4]);
    expect([dv.getFloat32(28, true), dv.getFloat32(32, true), dv.getFloat32(36, true)]).toEqual([-5, 3, 5]);
    expect(Array.from(topkCodec.decode(bytes, 6))).toEqual([0, -5, 3, 0, 5, 0]);
    expect(topkCodec.maxAbsError(x, { fraction: 0.5 })).toBeCloseTo(0.2, 7);
  });

  it('breaks ties toward the lower index', () => {
    const y = topkCodec.decode(topkCodec.encode(Float32Array.from([1, -1, 1, 1]), { fraction: 0.5 }), 4);
    expect(Array.from(y)).toEqual([1, -1, 0, 0]);
  });

  it('keeps at least one coordinate and at most all', () => {
    expect(topkCount(10, 1e-9)).toBe(1);
    expect(topkCount(100, 0.07)).toBe(7);
    expect(topkCount(3, 1)).toBe(3);
    expect(topkCount(0, 0.5)).toBe(0);
    expect(() => topkCodec.encode(new Float32Array(3), { fraction: 0 })).toThrow(RangeError);
    expect(() => topkCodec.encode(new Float32Array(3), { fraction: 1.5 })).toThrow(RangeError);
  });

  it('rejects out-of-range, unordered or over-long index lists', () => {
    const x = Float32Array.from([1, 2, 3, 4]);
    const bytes = topkCodec.encode(x, { fraction: 0.5 }); // indices 2, 3
    const cases: Array<(dv: DataView) => void> = [
      (dv) => dv.setUint32(20, 4, true), // index == n
      (dv) => dv.setUint32(16, 3, true), // 3, 3: not strictly increasing
      (dv) => dv.setUint32(12, 5, true), // k > n
      (dv) => dv.setUint32(12, 1, true), // k disagrees with the length
    ];
    for (const mutate of cases) {
      const b = bytes.slice();
      mutate(new DataView(b.buffer));
      let code: string | undefined;
      try {
        topkCodec.decode(b, 4);
      } catch (e) {
        code = (e as AppError).code;
      }
      expect(code).toBe('FL_ERR_CODEC_CORRUPT');
    }
  });
});
