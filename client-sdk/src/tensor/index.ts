export * from './manifest.js';
export * from './codec.js';
export { f32Codec } from './f32-codec.js';
export { f16Codec } from './f16-codec.js';
export { int8Codec, DEFAULT_INT8_BLOCK } from './int8-codec.js';
export { topkCodec, topkCount, DEFAULT_TOPK_FRACTION } from './topk-codec.js';
export { ErrorFeedback } from './error-feedback.js';
export { getCodec, listCodecs } from './codecs.js';
export { l2Norm, clipInPlace } from './vector-ops.js';
