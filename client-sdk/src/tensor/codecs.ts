import { AppError } from '../protocol/errors.js';
import type { CodecName, DeltaCodec } from './codec.js';
import { f32Codec } from './f32-codec.js';

/** The codecs this build knows, by name. Later codecs (f16, int8, topk) register here. */
const CODECS: Partial<Record<CodecName, DeltaCodec>> = { f32: f32Codec };

export function getCodec(name: string): DeltaCodec {
  const c = CODECS[name as CodecName];
  if (!c) throw new AppError('FL_ERR_CODEC_UNKNOWN', { codec: name });
  return c;
}

export function listCodecs(): DeltaCodec[] {
  return Object.values(CODECS) as DeltaCodec[];
}
