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
    expectHeader(bytes, 'f32', expectedLength);
    if (bytes.byteLength !== HEADER_BYTES + 4 * expectedLength) {
      throw new AppError('FL_ERR_CODEC_CORRUPT', { expectedBytes: HEADER_BYTES + 4 * expectedLength, got: bytes.byteLength });
    }
    const out = new Float32Array(expectedLength);
    new Uint8Array(out.buffer).set(bytes.subarray(HEADER_BYTES));
    return out;
  },
  maxAbsError() {
    return 0;
  },
};
