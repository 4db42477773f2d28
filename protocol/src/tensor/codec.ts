import { AppError } from '../errors.js';

/**
 * A delta codec turns a flat float32 delta into bytes and back. Every codec:
 *  - writes a 12-byte header: magic "FLD" + codec id (u8), element count (u32 LE), param (f32 LE);
 *  - decodes to exactly `expectedLength` floats or throws FL_ERR_CODEC_CORRUPT / FL_ERR_CODEC_UNKNOWN,
 *    never returns garbage for truncated or mismatched input;
 *  - states its error bound in `maxAbsError` (0 for lossless);
 *  - passes the shared codec suite (test/tensor/codec-suite).
 * Codecs are pure; stateful tricks (top-k error feedback) live with the caller.
 */
export type CodecName = 'f32' | 'f16' | 'int8' | 'topk';

export const CODEC_IDS: Record<CodecName, number> = { f32: 1, f16: 2, int8: 3, topk: 4 };

export interface CodecOptions {
  /** topk: fraction of coordinates kept, in (0, 1]. */
  fraction?: number;
  /** int8: floats per scale block. */
  blockSize?: number;
  /** int8: random source in [0,1) for stochastic rounding; deterministic rounding when absent. */
  random?: () => number;
}

export interface DeltaCodec {
  readonly name: CodecName;
  encode(delta: Float32Array, options?: CodecOptions): Uint8Array;
  decode(bytes: Uint8Array, expectedLength: number): Float32Array;
  /** Upper bound of |decode(encode(x)) - x| per coordinate for input x, as documented per codec. */
  maxAbsError(delta: Float32Array, options?: CodecOptions): number;
}

export const HEADER_BYTES = 12;
const MAGIC = [0x46, 0x4c, 0x44]; // "FLD"

export function writeHeader(out: Uint8Array, codec: CodecName, count: number, param = 0): void {
  out[0] = MAGIC[0];
  out[1] = MAGIC[1];
  out[2] = MAGIC[2];
  out[3] = CODEC_IDS[codec];
  const dv = new DataView(out.buffer, out.byteOffset, HEADER_BYTES);
  dv.setUint32(4, count, true);
  dv.setFloat32(8, param, true);
}

export interface Header {
  codec: CodecName;
  count: number;
  param: number;
}

export function readHeader(bytes: Uint8Array): Header {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < HEADER_BYTES) {
    throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'shorter than header' });
  }
  if (bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1] || bytes[2] !== MAGIC[2]) {
    throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'bad magic' });
  }
  const codec = (Object.keys(CODEC_IDS) as CodecName[]).find((k) => CODEC_IDS[k] === bytes[3]);
  if (!codec) throw new AppError('FL_ERR_CODEC_UNKNOWN', { id: bytes[3] });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  return { codec, count: dv.getUint32(4, true), param: dv.getFloat32(8, true) };
}

/** Header check shared by decoders: right codec, right element count. */
export function expectHeader(bytes: Uint8Array, codec: CodecName, expectedLength: number): Header {
  const h = readHeader(bytes);
  if (h.codec !== codec) throw new AppError('FL_ERR_REPORT_WRONG_CODEC', { expected: codec, got: h.codec });
  if (h.count !== expectedLength) {
    throw new AppError('FL_ERR_REPORT_SHAPE_MISMATCH', { expected: expectedLength, got: h.count });
  }
  return h;
}
