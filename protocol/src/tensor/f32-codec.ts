import { AppError } from '../errors.js';
import { HEADER_BYTES, expectHeader, writeHeader, type DeltaCodec } from './codec.js';

/** Lossless float32 little-endian. Size: 12 + 4n bytes. Decoding copies once (the result owns its memory). */
export const f32Codec: DeltaCodec = {
  name: 'f32',
  encode(delta) {
    const out = new Uint8Array(HEADER_BYTES + delta.byteLength);
    writeHeader(out, 'f32', delta.length);
    out.set(new Uint8Array(delta.buffer, delta.byteOffset, delta.byteLength), HEADER_BYTES);
    return out;
  },
  decode(bytes, expectedLength) {
    checkF32(bytes, expectedLength);
    const out = new Float32Array(expectedLength);
    new Uint8Array(out.buffer).set(bytes.subarray(HEADER_BYTES));
    return out;
  },
  maxAbsError() {
    return 0;
  },
};

function checkF32(bytes: Uint8Array, expectedLength: number): void {
  expectHeader(bytes, 'f32', expectedLength);
  if (bytes.byteLength !== HEADER_BYTES + 4 * expectedLength) {
    throw new AppError('FL_ERR_CODEC_CORRUPT', { expectedBytes: HEADER_BYTES + 4 * expectedLength, got: bytes.byteLength });
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * `f32Codec.decode` without the copy where it can: the same checks (same errors), then a
 * Float32Array over the payload's own bytes when they are 4-byte aligned on a little-endian
 * machine (the result shares memory with `bytes`: writing one changes the other), else a copy.
 * For a receiver that owns the frame and reads each report once (the coordinator's report path).
 */
export function f32View(bytes: Uint8Array, expectedLength: number): Float32Array {
  const start = bytes.byteOffset + HEADER_BYTES;
  if (!LITTLE_ENDIAN || start % 4 !== 0) return f32Codec.decode(bytes, expectedLength);
  checkF32(bytes, expectedLength);
  return new Float32Array(bytes.buffer, start, expectedLength);
}
