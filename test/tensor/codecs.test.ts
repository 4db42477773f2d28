import { describe, expect, it } from 'vitest';
import { getCodec, listCodecs } from '@flotilla/protocol';
import { AppError, CodecNameSchema } from '@flotilla/protocol';
import { SUITE_SPECS, codecSuite } from './codec-suite.js';

const codecs = listCodecs();

describe('codec registry', () => {
  it('registers every codec name the plan schema allows', () => {
    expect(codecs.map((c) => c.name).sort()).toEqual([...CodecNameSchema.options].sort());
    for (const c of codecs) expect(getCodec(c.name)).toBe(c);
  });

  it('rejects an unknown codec name with FL_ERR_CODEC_UNKNOWN', () => {
    expect(() => getCodec('zstd')).toThrow(AppError);
    try {
      getCodec('zstd');
    } catch (e) {
      expect((e as AppError).code).toBe('FL_ERR_CODEC_UNKNOWN');
    }
  });
});

for (const codec of codecs) codecSuite(codec, SUITE_SPECS[codec.name], codecs);
