import { describe, expect, it } from 'vitest';
import { f32Codec, f32View } from '@flotilla/protocol';

describe('f32View', () => {
  const delta = Float32Array.from({ length: 33 }, (_, i) => Math.sin(i));
  const encoded = f32Codec.encode(delta);

  it('reads an aligned payload in place (no copy) and equals decode', () => {
    const buf = new Uint8Array(encoded.byteLength + 4);
    buf.set(encoded, 4); // payload starts at 4 + 12: aligned
    const frame = buf.subarray(4);
    const v = f32View(frame, delta.length);
    expect(v).toEqual(f32Codec.decode(frame, delta.length));
    expect(v.buffer).toBe(buf.buffer);
  });

  it('copies an unaligned payload, with the same values', () => {
    const buf = new Uint8Array(encoded.byteLength + 1);
    buf.set(encoded, 1);
    const frame = buf.subarray(1);
    const v = f32View(frame, delta.length);
    expect(v).toEqual(delta);
    expect(v.buffer).not.toBe(buf.buffer);
  });

  it('refuses what decode refuses, with the same codes', () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return 'none';
      } catch (err) {
        return (err as { code?: string }).code;
      }
    };
    for (const bad of [encoded.subarray(0, 20), encoded.subarray(0, 8), Uint8Array.from([...encoded, 0, 0, 0, 0])]) {
      expect(code(() => f32View(bad, delta.length))).toBe(code(() => f32Codec.decode(bad, delta.length)));
      expect(code(() => f32View(bad, delta.length))).not.toBe('none');
    }
    expect(code(() => f32View(encoded, delta.length + 1))).toBe(code(() => f32Codec.decode(encoded, delta.length + 1)));
  });
});
