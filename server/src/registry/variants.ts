import { AppError, type ModelSpec } from '@flotilla/protocol';
import { HEADER_BYTES, f16Codec, float32ToBytes, int8Codec, writeHeader, bytesToFloat32 } from '@flotilla/protocol';
import { decodeSparse, encodeSparse, magnitudePrune } from './magnitude-prune.js';

/**
 * Variants of a version's weights, made at publish and stored beside the float32 weights as
 * their own artifacts. Each is a storage format (not a wire codec) with a decode back to a dense
 * float32 vector, which is what evaluation and tfjs serving use:
 *
 *   float16  artifact 'weights.float16': n raw IEEE binary16 LE values (2n bytes), exactly what a
 *            tfjs weightsManifest entry with `quantization: { dtype: 'float16' }` reads, so
 *            model.json?variant=float16 serves these bytes untouched (half the size).
 *   int8     artifact 'weights.int8': per-block affine 8-bit quantisation, the shared int8 codec's
 *            bytes (blocks of `int8BlockSize` floats, one (min, scale) pair each; ~n bytes, a
 *            quarter). tfjs only knows per-tensor affine uint8, so tfjs serving decodes it.
 *   pruned   artifact 'weights.pruned': magnitude-pruned to `sparsity` in every kernel, stored
 *            sparse (bitmap + non-zeros, see magnitude-prune.ts); tfjs serving decodes it.
 */
export const VARIANTS = ['float16', 'int8', 'pruned'] as const;
export type VariantName = (typeof VARIANTS)[number];
/**
 * A student distilled from the version (`flotilla models distill`), added after publish: its own
 * topology (artifact 'spec.distilled', a ModelSpec as JSON) and float32 weights
 * ('weights.distilled'); see Registry.addStudent.
 */
export const STUDENT_VARIANT = 'distilled';
export const STUDENT_SPEC_ARTIFACT = 'spec.distilled';
/** Every variant a request may name besides 'float32'. */
export const SERVED_VARIANTS = [...VARIANTS, STUDENT_VARIANT] as const;
/** 'float32' names the version's own weights. */
export type WeightsVariant = 'float32' | VariantName | typeof STUDENT_VARIANT;

export const WEIGHTS_ARTIFACT = 'weights';
export const artifactOf = (v: WeightsVariant): string => (v === 'float32' ? WEIGHTS_ARTIFACT : `weights.${v}`);

export function isWeightsVariant(x: string): x is WeightsVariant {
  return x === 'float32' || (SERVED_VARIANTS as readonly string[]).includes(x);
}

export interface VariantOptions {
  /** Fraction of each kernel set to zero by the pruned variant, in [0, 1). Default 0.5. */
  sparsity: number;
  /** Floats per (min, scale) block of the int8 variant. Default 256. */
  int8BlockSize: number;
}

export const DEFAULT_VARIANT_OPTIONS: VariantOptions = { sparsity: 0.5, int8BlockSize: 256 };

export interface EncodedVariant {
  bytes: Uint8Array;
  /** The weights this variant stands for, densely (what evaluation sees). */
  dense: Float32Array;
  /** Facts worth recording in the version's metrics, e.g. the achieved sparsity. */
  facts: Record<string, number>;
}

export function encodeVariant(variant: VariantName, weights: Float32Array, spec: ModelSpec, o: VariantOptions): EncodedVariant {
  switch (variant) {
    case 'float16': {
      const bytes = f16Codec.encode(weights).slice(HEADER_BYTES);
      return { bytes, dense: decodeVariant('float16', bytes, weights.length), facts: {} };
    }
    case 'int8': {
      const bytes = int8Codec.encode(weights, { blockSize: o.int8BlockSize });
      return { bytes, dense: int8Codec.decode(bytes, weights.length), facts: {} };
    }
    case 'pruned': {
      const dense = magnitudePrune(weights, spec.manifest, o.sparsity);
      let zeros = 0;
      for (let i = 0; i < dense.length; i++) if (dense[i] === 0) zeros++;
      return { bytes: encodeSparse(dense), dense, facts: { pruned_sparsity: dense.length ? zeros / dense.length : 0 } };
    }
  }
}

/** Dense float32 weights of a stored variant's bytes; FL_ERR_CODEC_CORRUPT when they do not fit `length`. */
export function decodeVariant(variant: WeightsVariant, bytes: Uint8Array, length: number): Float32Array {
  switch (variant) {
    case 'float32':
    case 'distilled':
      if (bytes.byteLength !== 4 * length) throw new AppError('FL_ERR_CODEC_CORRUPT', { variant, expectedBytes: 4 * length, got: bytes.byteLength });
      return bytesToFloat32(bytes);
    case 'float16': {
      const framed = new Uint8Array(HEADER_BYTES + bytes.byteLength);
      writeHeader(framed, 'f16', length);
      framed.set(bytes, HEADER_BYTES);
      return f16Codec.decode(framed, length);
    }
    case 'int8':
      return int8Codec.decode(bytes, length);
    case 'pruned':
      return decodeSparse(bytes, length);
  }
}

/** The bytes tfjs reads for a variant: stored bytes where tfjs understands them, else dense float32. */
export function tfjsWeightBytes(variant: WeightsVariant, stored: Uint8Array, length: number): Uint8Array {
  if (variant === 'float32' || variant === 'float16' || variant === 'distilled') return stored;
  return float32ToBytes(decodeVariant(variant, stored, length));
}
