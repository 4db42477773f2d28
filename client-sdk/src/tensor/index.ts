export * from './manifest.js';
export * from './codec.js';
export { f32Codec } from './f32-codec.js';
export { getCodec, listCodecs } from './codecs.js';
