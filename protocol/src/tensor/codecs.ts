import { AppError } from '../errors.js';
import type { CodecName, DeltaCodec } from './codec.js';
import { f16Codec } from './f16-codec.js';
import { f32Codec } from './f32-codec.js';
import { int8Codec } from './int8-codec.js';
import { topkCodec } from './topk-codec.js';

/** The codecs this build knows, by name; every one passes test/tensor/codec-suite. */
const CODECS: Partial<Record<CodecName, DeltaCodec>> = { f32: f32Codec, f16: f16Codec, int8: int8Codec, topk: topkCodec };

export function getCodec(name: string): DeltaCodec {
  const c = CODECS[name as CodecName];
  if (!c) throw new AppError('FL_ERR_CODEC_UNKNOWN', { codec: name });
  return c;
}

export function listCodecs(): DeltaCodec[] {
  return Object.values(CODECS) as DeltaCodec[];
}
