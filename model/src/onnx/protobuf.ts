/**
 * The protocol-buffers wire format, as far as ONNX model files need it: varints (wire type 0),
 * length-delimited fields (2), fixed 32/64-bit fields (5, 1) skipped or read. Reading never trusts
 * a length: a field running past its buffer throws a RangeError (callers turn it into a coded
 * error). Writing produces canonical encodings (fields in the order given, packed repeated scalars).
 */
export type Field = { field: number; wire: 0; value: bigint } | { field: number; wire: 2; value: Uint8Array } | { field: number; wire: 1 | 5; value: Uint8Array };

function readVarint(b: Uint8Array, pos: number): [bigint, number] {
  let x = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw new RangeError('truncated varint');
    const byte = b[pos++];
    x |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [x, pos];
    shift += 7n;
  }
  throw new RangeError('varint longer than 10 bytes');
}

/** Every field of one message, in order (unknown wire types throw RangeError). */
export function readFields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < b.length) {
    const [key, p] = readVarint(b, pos);
    pos = p;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (field < 1) throw new RangeError('field number 0');
    if (wire === 0) {
      const [v, q] = readVarint(b, pos);
      pos = q;
      out.push({ field, wire, value: v });
    } else if (wire === 2) {
      const [len, q] = readVarint(b, pos);
      const end = q + Number(len);
      if (len > BigInt(b.length) || end > b.length) throw new RangeError('length-delimited field runs past its message');
      out.push({ field, wire, value: b.subarray(q, end) });
      pos = end;
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (pos + n > b.length) throw new RangeError('truncated fixed field');
      out.push({ field, wire, value: b.subarray(pos, pos + n) });
      pos += n;
    } else throw new RangeError(`unsupported wire type ${wire}`);
  }
  return out;
}

/** The values of a repeated integer field, packed (wire type 2) or not (one varint per field). */
export function repeatedInts(fields: Field[]): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.wire === 0) out.push(int(f.value));
    else if (f.wire === 2) {
      for (let pos = 0; pos < f.value.length; ) {
        const [v, q] = readVarint(f.value, pos);
        out.push(int(v));
        pos = q;
      }
    } else throw new RangeError(`field ${f.field} is not an integer`);
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
export const text = (v: Uint8Array): string => utf8.decode(v);
/** A signed 64-bit varint as a number (ONNX dims and versions fit in a double). */
export const int = (v: bigint): number => Number(BigInt.asIntN(64, v));

// ---- writing ----

function varint(x: bigint | number): number[] {
  let v = BigInt.asUintN(64, BigInt(x));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A message under construction. */
export class Writer {
  private parts: Uint8Array[] = [];

  int(field: number, v: number | bigint): this {
    this.parts.push(Uint8Array.from([...varint((field << 3) | 0), ...varint(v)]));
    return this;
  }

  bytes(field: number, v: Uint8Array): this {
    this.parts.push(Uint8Array.from([...varint((field << 3) | 2), ...varint(v.length)]), v);
    return this;
  }

  /** A float (wire type 5, little-endian). */
  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(Uint8Array.from([...varint((field << 3) | 5), ...b]));
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }

  /** Packed repeated int64 (e.g. TensorProto.dims). */
  packedInts(field: number, vs: readonly number[]): this {
    return this.bytes(field, Uint8Array.from(vs.flatMap((v) => varint(v))));
  }

  finish(): Uint8Array {
    const n = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}
