/**
 * Server-optimizer vectors in exported strategy state: float32 little-endian bytes in base64, so
 * that state stays JSON-serialisable and about 1.33 bytes per byte instead of ~20 per number.
 */
export function vectorToBase64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

/** Throws RangeError unless `s` decodes to exactly `length` floats (when given). */
export function vectorFromBase64(s: unknown, length?: number): Float32Array {
  if (typeof s !== 'string') throw new RangeError('state vector must be a base64 string');
  const b = Buffer.from(s, 'base64');
  if (b.byteLength % 4 !== 0) throw new RangeError('state vector is not whole float32s');
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  if (length !== undefined && out.length !== length) throw new RangeError(`state vector length ${out.length} != ${length}`);
  return out;
}
