/**
 * The IDX format of MNIST and Fashion-MNIST (big-endian header, then raw uint8 values): images
 * become float32 rows scaled to [0, 1], labels uint8. Both land in SharedArrayBuffers, so a split
 * can be handed to worker threads without copies (simulator/src/mnist.ts relies on it).
 */
const IDX_IMAGES_MAGIC = 0x00000803;
const IDX_LABELS_MAGIC = 0x00000801;

/** Parse an IDX image file into a shared float32 array scaled to [0, 1]; `limit` keeps the first rows. */
export function parseIdxImages(buf: Uint8Array, limit = Infinity): { x: Float32Array; n: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 16 || dv.getUint32(0) !== IDX_IMAGES_MAGIC) throw new Error('not an IDX image file (bad magic)');
  const count = dv.getUint32(4);
  const rows = dv.getUint32(8);
  const cols = dv.getUint32(12);
  const size = rows * cols;
  if (buf.byteLength < 16 + count * size) throw new Error(`IDX image file truncated: ${buf.byteLength} bytes for ${count} images`);
  const n = Math.min(count, limit);
  const x = new Float32Array(new SharedArrayBuffer(n * size * 4));
  const px = buf.subarray(16, 16 + n * size);
  for (let i = 0; i < px.length; i++) x[i] = px[i] / 255;
  return { x, n };
}

/** Parse an IDX label file into a shared uint8 array; `limit` keeps the first labels. */
export function parseIdxLabels(buf: Uint8Array, limit = Infinity): Uint8Array {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 8 || dv.getUint32(0) !== IDX_LABELS_MAGIC) throw new Error('not an IDX label file (bad magic)');
  const count = dv.getUint32(4);
  if (buf.byteLength < 8 + count) throw new Error(`IDX label file truncated: ${buf.byteLength} bytes for ${count} labels`);
  const n = Math.min(count, limit);
  const y = new Uint8Array(new SharedArrayBuffer(n));
  y.set(buf.subarray(8, 8 + n));
  return y;
}
