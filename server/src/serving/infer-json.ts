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
  b = bytes;
  pos = 0;
  try {
    ws();
    if (b[pos] !== OPEN_BRACE) return null;
    const v = object(0);
    ws();
    return pos === b.length ? v : null;
  } catch (err) {
    if (err === FALLBACK) return null;
    throw err;
  } finally {
    b = EMPTY;
  }
}

const MAX_DEPTH = 64;
const FALLBACK = new Error('infer-json: take the general path');
const EMPTY = new Uint8Array(0);
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

let b: Uint8Array = EMPTY;
let pos = 0;
/** Scratch for numeric arrays (grows; its values are copied out). */
let scratch = new Float64Array(1024);

const fail = (): never => {
  throw FALLBACK;
};

function ws(): void {
  for (;;) {
    const c = b[pos];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
    else return;
  }
}

function value(depth: number, key: string | null): unknown {
  ws();
  const c = b[pos];
  if (c === OPEN_BRACE) return object(depth + 1);
  if (c === OPEN_BRACKET) {
    if (key === 'data') {
      const start = pos;
      const flat = numbers();
      if (flat) return flat;
      pos = start;
    }
    return array(depth + 1);
  }
  if (c === QUOTE) return string(false);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return number();
  if (c === 0x74 && b[pos + 1] === 0x72 && b[pos + 2] === 0x75 && b[pos + 3] === 0x65) return (pos += 4), true;
  if (c === 0x66 && b[pos + 1] === 0x61 && b[pos + 2] === 0x6c && b[pos + 3] === 0x73 && b[pos + 4] === 0x65) return (pos += 5), false;
  if (c === 0x6e && b[pos + 1] === 0x75 && b[pos + 2] === 0x6c && b[pos + 3] === 0x6c) return (pos += 4), null;
  return fail();
}

function object(depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) fail();
  pos++; // {
  const o: Record<string, unknown> = {};
  ws();
  if (b[pos] === CLOSE_BRACE) {
    pos++;
    return o;
  }
  for (;;) {
    ws();
    if (b[pos] !== QUOTE) fail();
    const key = string(true);
    if (key === '__proto__' || key === 'constructor') fail();
    ws();
    if (b[pos] !== COLON) fail();
    pos++;
    o[key] = value(depth, key);
    ws();
    const c = b[pos++];
    if (c === COMMA) continue;
    if (c === CLOSE_BRACE) return o;
    return fail();
  }
}

function array(depth: number): unknown[] {
  if (depth > MAX_DEPTH) fail();
  pos++; // [
  const a: unknown[] = [];
  ws();
  if (b[pos] === CLOSE_BRACKET) {
    pos++;
    return a;
  }
  for (;;) {
    a.push(value(depth, null));
    ws();
    const c = b[pos++];
    if (c === COMMA) continue;
    if (c === CLOSE_BRACKET) return a;
    return fail();
  }
}

/** A string at `pos` (its opening quote). Keys with escapes take the general path (secure-json-parse's checks see escapes). */
function string(isKey: boolean): string {
  const start = ++pos;
  let escaped = false;
  let ascii = true;
  for (;;) {
    const c = b[pos];
    if (c === QUOTE) break;
    if (c === undefined || c < 0x20) fail();
    if (c === BACKSLASH) {
      escaped = true;
      pos += 2;
      continue;
    }
    if (c >= 0x80) ascii = false;
    pos++;
  }
  const end = pos++;
  if (escaped) {
    if (isKey) fail();
    try {
      return JSON.parse(decode(start - 1, end + 1)) as string;
    } catch {
      return fail();
    }
  }
  return ascii ? latin1(start, end) : decode(start, end);
}

function decode(start: number, end: number): string {
  const bytes = b.subarray(start, end);
  if (!isUtf8(bytes)) fail();
  return decoder.decode(bytes);
}

function latin1(start: number, end: number): string {
  return end - start < 64 ? String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]) : decoder.decode(b.subarray(start, end));
}

/** A JSON number at `pos`, read strictly by the grammar (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`). */
function number(): number {
  const start = pos;
  let c = b[pos];
  const neg = c === MINUS;
  if (neg) c = b[++pos];
  let m = 0;
  let digits = 0;
  let frac = 0;
  if (c === ZERO) {
    c = b[++pos];
    digits = 1;
  } else if (c >= 0x31 && c <= NINE) {
    do {
      m = m * 10 + (c - ZERO);
      digits++;
      c = b[++pos];
    } while (c >= ZERO && c <= NINE);
  } else fail();
  if (c === 0x2e) {
    c = b[++pos];
    if (!(c >= ZERO && c <= NINE)) fail();
    do {
      m = m * 10 + (c - ZERO);
      digits++;
      frac++;
      c = b[++pos];
    } while (c >= ZERO && c <= NINE);
  }
  let exp = false;
  if (c === 0x65 || c === 0x45) {
    exp = true;
    c = b[++pos];
    if (c === 0x2b || c === MINUS) c = b[++pos];
    if (!(c >= ZERO && c <= NINE)) fail();
    do c = b[++pos];
    while (c >= ZERO && c <= NINE);
  }
  if (exp || digits > 15) return Number(latin1(start, pos));
  const v = frac ? m / POW10[frac] : m;
  return neg ? -v : v;
}

/** A flat array of numbers at `pos` as a new Float64Array; null (pos wherever) when an element is not a number. */
function numbers(): Float64Array | null {
  pos++; // [
  ws();
  if (b[pos] === CLOSE_BRACKET) return null; // empty: an ordinary []
  let n = 0;
  for (;;) {
    ws();
    const c = b[pos];
    if (!(c === MINUS || (c >= ZERO && c <= NINE))) return null;
    if (n === scratch.length) {
      const grown = new Float64Array(n * 2);
      grown.set(scratch);
      scratch = grown;
    }
    scratch[n++] = number();
    ws();
    const d = b[pos++];
    if (d === COMMA) continue;
    if (d === CLOSE_BRACKET) return scratch.slice(0, n);
    return fail();
  }
}
