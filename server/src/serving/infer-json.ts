import { isUtf8 } from 'node:buffer';

/**
 * A fast path for JSON inference bodies (OIP and TF Serving), which are mostly numbers: parsing
 * them with JSON.parse and then copying the resulting arrays cost more than anything else a
 * batched request does (docs/serving.md, "Benchmark"). Contract of `parseInferJson(bytes)`:
 *  - it returns null when it is not sure, and the caller then takes the general path (fastify's
 *    JSON parser: JSON.parse with its `__proto__`/`constructor` checks, then zod), so every
 *    error a client can see comes from that path, with its codes: invalid JSON, a BOM, a top
 *    level that is not an object, an escape or `__proto__`/`constructor` in a key, a string that
 *    is not valid UTF-8, nesting deeper than MAX_DEPTH;
 *  - otherwise it returns exactly what JSON.parse returns for the same text, except that the
 *    value of a `data` key that is a flat array of JSON numbers (at least one) is a
 *    Float64Array of the same doubles (toFloat32 in infer-input.ts checks it as it checks such
 *    an array; nested data stays nested arrays).
 * Numbers are read by Clinger's fast path (at most 15 digits, no exponent: an exact integer
 * divided by an exact power of ten, so correctly rounded like JSON.parse); any other number goes
 * through Number() of its text, which rounds the same way.
 */
export function parseInferJson(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  try {
    r.ws();
    if (bytes[r.pos] !== OPEN_BRACE) return null;
    const v = r.object(0);
    r.ws();
    return r.pos === bytes.length ? v : null;
  } catch (err) {
    if (err === FALLBACK) return null;
    throw err;
  }
}

const MAX_DEPTH = 64;
const FALLBACK = new Error('infer-json: take the general path');
const POW10 = Array.from({ length: 16 }, (_, i) => 10 ** i);
// ignoreBOM: a U+FEFF inside a string is kept, as JSON.parse keeps it.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

const fail = (): never => {
  throw FALLBACK;
};

/** One parse: the bytes and the read position. */
class Reader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  ws(): void {
    for (;;) {
      const c = this.b[this.pos];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else return;
    }
  }

  value(depth: number, key: string | null): unknown {
    this.ws();
    const c = this.b[this.pos];
    if (c === OPEN_BRACE) return this.object(depth + 1);
    if (c === OPEN_BRACKET) {
      if (key === 'data') {
        const start = this.pos;
        const flat = this.numbers();
        if (flat) return flat;
        this.pos = start;
      }
      return this.array(depth + 1);
    }
    if (c === QUOTE) return this.string(false);
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.number();
    if (this.word('true')) return true;
    if (this.word('false')) return false;
    if (this.word('null')) return null;
    return fail();
  }

  /** Whether `w` (ASCII) is next; reads past it if so. */
  word(w: string): boolean {
    for (let k = 0; k < w.length; k++) if (this.b[this.pos + k] !== w.charCodeAt(k)) return false;
    this.pos += w.length;
    return true;
  }

  object(depth: number): Record<string, unknown> {
    if (depth > MAX_DEPTH) fail();
    this.pos++; // {
    const o: Record<string, unknown> = {};
    this.ws();
    if (this.b[this.pos] === CLOSE_BRACE) {
      this.pos++;
      return o;
    }
    for (;;) {
      this.ws();
      if (this.b[this.pos] !== QUOTE) fail();
      const key = this.string(true);
      if (key === '__proto__' || key === 'constructor') fail();
      this.ws();
      if (this.b[this.pos] !== COLON) fail();
      this.pos++;
      o[key] = this.value(depth, key);
      this.ws();
      const c = this.b[this.pos++];
      if (c === COMMA) continue;
      if (c === CLOSE_BRACE) return o;
      return fail();
    }
  }

  array(depth: number): unknown[] {
    if (depth > MAX_DEPTH) fail();
    this.pos++; // [
    const a: unknown[] = [];
    this.ws();
    if (this.b[this.pos] === CLOSE_BRACKET) {
      this.pos++;
      return a;
    }
    for (;;) {
      a.push(this.value(depth, null));
      this.ws();
      const c = this.b[this.pos++];
      if (c === COMMA) continue;
      if (c === CLOSE_BRACKET) return a;
      return fail();
    }
  }

  /** A string at `this.pos` (its opening quote). Keys with escapes take the general path (secure-json-parse's checks see escapes). */
  string(isKey: boolean): string {
    const start = ++this.pos;
    let escaped = false;
    let ascii = true;
    for (;;) {
      const c = this.b[this.pos];
      if (c === QUOTE) break;
      if (c === undefined || c < 0x20) fail();
      if (c === BACKSLASH) {
        escaped = true;
        this.pos += 2;
        continue;
      }
      if (c >= 0x80) ascii = false;
      this.pos++;
    }
    const end = this.pos++;
    if (escaped) {
      if (isKey) fail();
      try {
        return JSON.parse(this.decode(start - 1, end + 1)) as string;
      } catch {
        return fail();
      }
    }
    return ascii ? this.latin1(start, end) : this.decode(start, end);
  }

  decode(start: number, end: number): string {
    const bytes = this.b.subarray(start, end);
    if (!isUtf8(bytes)) fail();
    return decoder.decode(bytes);
  }

  latin1(start: number, end: number): string {
    return end - start < 64 ? String.fromCharCode.apply(null, this.b.subarray(start, end) as unknown as number[]) : decoder.decode(this.b.subarray(start, end));
  }

  /** A JSON number at `this.pos`, read strictly by the grammar (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`). */
  number(): number {
    // Locals inside the loops: this runs once per number.
    const buf = this.b;
    const start = this.pos;
    let i = this.pos;
    let c = buf[i];
    const neg = c === MINUS;
    if (neg) c = buf[++i];
    let m = 0;
    let digits = 0;
    let frac = 0;
    if (c === ZERO) {
      c = buf[++i];
      digits = 1;
    } else if (c >= 0x31 && c <= NINE) {
      do {
        m = m * 10 + (c - ZERO);
        digits++;
        c = buf[++i];
      } while (c >= ZERO && c <= NINE);
    } else fail();
    if (c === 0x2e) {
      c = buf[++i];
      if (!(c >= ZERO && c <= NINE)) fail();
      do {
        m = m * 10 + (c - ZERO);
        digits++;
        frac++;
        c = buf[++i];
      } while (c >= ZERO && c <= NINE);
    }
    let exp = false;
    if (c === 0x65 || c === 0x45) {
      exp = true;
      c = buf[++i];
      if (c === 0x2b || c === MINUS) c = buf[++i];
      if (!(c >= ZERO && c <= NINE)) fail();
      do c = buf[++i];
      while (c >= ZERO && c <= NINE);
    }
    this.pos = i;
    if (exp || digits > 15) return Number(this.latin1(start, i));
    const v = frac ? m / POW10[frac] : m;
    return neg ? -v : v;
  }

  /** A flat array of numbers at `this.pos` as a new Float64Array; null (this.pos wherever) when an element is not a number. */
  numbers(): Float64Array | null {
    const buf = this.b;
    let i = this.pos + 1; // after [
    let c = buf[i];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i];
    if (c === CLOSE_BRACKET) return null; // empty: an ordinary []
    // At most one number per two bytes left ("0,"); capped, and grown when a body has more.
    let out = new Float64Array(Math.min(4096, (buf.length - i + 1) >> 1));
    let n = 0;
    for (;;) {
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i];
      if (!(c === MINUS || (c >= ZERO && c <= NINE))) return null;
      if (n === out.length) {
        const grown = new Float64Array(n * 2);
        grown.set(out);
        out = grown;
      }
      this.pos = i;
      out[n++] = this.number();
      i = this.pos;
      c = buf[i];
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i];
      if (c === COMMA) {
        c = buf[++i];
        continue;
      }
      this.pos = i + 1;
      if (c === CLOSE_BRACKET) return n === out.length ? out : out.slice(0, n);
      return fail();
    }
  }
}
