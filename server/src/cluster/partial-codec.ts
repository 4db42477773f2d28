import type { AggregatorPartial } from '../fl/strategy.js';

/**
 * Wire form of an aggregator partial between nodes: u32 little-endian length of the JSON meta,
 * the meta, zero padding to a multiple of 8, then the float64 sum. Exactly 8 x model length
 * bytes plus a small header, whatever the number of reports folded into it.
 */
export function encodePartial(p: AggregatorPartial): Buffer {
  const meta = Buffer.from(JSON.stringify(p.meta));
  const head = 4 + meta.length;
  const pad = (8 - (head % 8)) % 8;
  const out = Buffer.alloc(head + pad + p.sum.byteLength);
  out.writeUInt32LE(meta.length, 0);
  meta.copy(out, 4);
  Buffer.from(p.sum.buffer, p.sum.byteOffset, p.sum.byteLength).copy(out, head + pad);
  return out;
}

export function decodePartial(b: Buffer): AggregatorPartial {
  if (b.length < 4) throw new RangeError('partial: truncated');
  const n = b.readUInt32LE(0);
  if (4 + n > b.length) throw new RangeError('partial: truncated meta');
  const meta = JSON.parse(b.subarray(4, 4 + n).toString('utf8')) as Record<string, unknown>;
  const start = 4 + n + ((8 - ((4 + n) % 8)) % 8);
  if ((b.length - start) % 8 !== 0) throw new RangeError('partial: sum is not whole float64s');
  const sum = new Float64Array((b.length - start) / 8);
  new Uint8Array(sum.buffer).set(b.subarray(start));
  return { sum, meta };
}
