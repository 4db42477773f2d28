import { AppError } from '../errors.js';

/**
 * A model's weights are one flat Float32Array plus this manifest. Entry i occupies
 * `flat.subarray(offset, offset + size)` with `size = product(shape)`; entries are contiguous,
 * in tfjs `model.getWeights()` order, so the manifest doubles as a tfjs weightsManifest.
 */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
  offset: number;
  size: number;
  /** False for a frozen weight (absent means trainable); see trainable.ts. */
  trainable?: boolean;
}

export type WeightManifest = WeightSpec[];

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Build a manifest from names and shapes, computing contiguous offsets. */
export function buildManifest(entries: ReadonlyArray<{ name: string; shape: readonly number[]; trainable?: boolean }>): WeightManifest {
  let offset = 0;
  return entries.map((e) => {
    const size = shapeSize(e.shape);
    const spec: WeightSpec = { name: e.name, shape: [...e.shape], dtype: 'float32', offset, size };
    if (e.trainable === false) spec.trainable = false;
    offset += size;
    return spec;
  });
}

/** Total number of floats the manifest describes. */
export function manifestLength(m: WeightManifest): number {
  const last = m[m.length - 1];
  return last ? last.offset + last.size : 0;
}

/** Throws FL_ERR_TENSOR_BAD_MANIFEST unless entries are contiguous, sized by shape, and named uniquely. */
export function assertManifest(m: WeightManifest): void {
  let offset = 0;
  const names = new Set<string>();
  for (const s of m) {
    if (names.has(s.name)) throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { name: s.name, why: 'duplicate name' });
    names.add(s.name);
    if (s.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { name: s.name, why: 'bad shape' });
    }
    if (s.offset !== offset || s.size !== shapeSize(s.shape)) {
      throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { name: s.name, why: 'offset or size' });
    }
    offset += s.size;
  }
}

/** Split a flat vector into per-weight views (no copies). */
export function splitFlat(flat: Float32Array, m: WeightManifest): Float32Array[] {
  if (flat.length !== manifestLength(m)) {
    throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { expected: manifestLength(m), got: flat.length });
  }
  return m.map((s) => flat.subarray(s.offset, s.offset + s.size));
}

/** Concatenate per-weight arrays into one flat vector laid out by the manifest. */
export function joinFlat(parts: ReadonlyArray<ArrayLike<number>>, m: WeightManifest): Float32Array {
  if (parts.length !== m.length) throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { expected: m.length, got: parts.length });
  const out = new Float32Array(manifestLength(m));
  m.forEach((s, i) => {
    const p = parts[i];
    if (p.length !== s.size) throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { name: s.name, expected: s.size, got: p.length });
    out.set(p, s.offset);
  });
  return out;
}

/** View bytes as float32 little-endian without copying when aligned; copies otherwise. */
export function bytesToFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'length not a multiple of 4' });
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  // Node Buffers' slice() is a view, so copy explicitly into fresh, aligned memory.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

export function float32ToBytes(f: Float32Array): Uint8Array {
  return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
}
