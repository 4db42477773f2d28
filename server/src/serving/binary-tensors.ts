import { AppError } from '../errors.js';
import type { OipTensor } from './infer-input.js';

/**
 * The Open Inference Protocol's binary tensor data extension (as Triton implements it): a request
 * body is a JSON inference header of `Inference-Header-Content-Length` bytes followed by the raw
 * bytes of every input whose `parameters.binary_data_size` is set, in input order, little-endian,
 * row-major. A response whose outputs ask for `binary_data` (or whose request parameters say
 * `binary_data_output: true`) is answered the same way. Supported here: FP32 and INT64 inputs
 * (INT64 values must be safe integers, as in JSON), FP32 outputs.
 */
export const HEADER_LENGTH = 'inference-header-content-length';
const BYTES: Record<string, number> = { FP32: 4, INT64: 8 };

const bad = (why: string, details: Record<string, unknown> = {}) => new AppError('FL_ERR_SERVING_BAD_INPUT', { why, ...details });

/**
 * Parsed inference headers by their exact bytes: a client sends the same header with every
 * request of one shape, and parsing it again cost more than the rest of the binary path (a CPU
 * profile of the batched route, docs/serving.md). A cached header is deeply frozen and shared by
 * every request that sends those bytes, so nothing downstream may change it (binaryInputs
 * returns new tensors instead). Bounded: headers up to HEADER_CACHE_BYTES, at most
 * HEADER_CACHE_ENTRIES of them (emptied when full); headers that are not JSON are never cached,
 * so they are refused the same way every time.
 */
const HEADER_CACHE_BYTES = 4096;
const HEADER_CACHE_ENTRIES = 64;
const headers = new Map<string, unknown>();
/** Every header object the cache has handed out (deeply frozen; see isSharedHeader). */
const shared = new WeakSet<object>();
/** The last header served from (or put into) the cache, with its bytes. */
let last: { bytes: Buffer; header: unknown } | null = null;

/** Whether `x` is a parsed inference header from the cache: deeply frozen, so a check it passed once holds for good. */
export function isSharedHeader(x: unknown): boolean {
  return typeof x === 'object' && x !== null && shared.has(x);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** Split a binary request body into its JSON header (parsed, deeply frozen) and the binary tail. */
export function splitBinaryBody(body: Buffer, headerLength: unknown): { header: unknown; tail: Buffer } {
  const n = typeof headerLength === 'string' && /^[0-9]{1,10}$/.test(headerLength) ? Number(headerLength) : NaN;
  if (!Number.isInteger(n) || n < 2 || n > body.length) throw bad(`${HEADER_LENGTH} must be the byte length of the JSON header within the body`, { got: headerLength ?? null, bodyBytes: body.length });
  // The header of the previous request, compared byte for byte, before a string key is made.
  if (last !== null && last.bytes.length === n && last.bytes.compare(body, 0, n, 0, n) === 0) return { header: last.header, tail: body.subarray(n) };
  // latin1 maps bytes to chars one to one: equal keys are equal bytes.
  const key = n <= HEADER_CACHE_BYTES ? body.toString('latin1', 0, n) : null;
  let header = key === null ? undefined : headers.get(key);
  if (header === undefined) {
    try {
      header = deepFreeze(JSON.parse(body.toString('utf8', 0, n)));
    } catch {
      throw bad('the inference header is not JSON');
    }
    if (key !== null) {
      if (headers.size >= HEADER_CACHE_ENTRIES) headers.clear();
      headers.set(key, header);
      if (typeof header === 'object' && header !== null) shared.add(header);
    }
  }
  if (key !== null) last = { bytes: Buffer.from(body.subarray(0, n)), header };
  return { header, tail: body.subarray(n) };
}

/**
 * `inputs` with each binary input's data read from `tail` (a typed array of the declared type),
 * as new tensor objects: `inputs` (possibly a shared cached header's) is left as it is. Every
 * byte of `tail` must be used.
 */
export function binaryInputs(inputs: readonly OipTensor[], tail: Buffer): OipTensor[] {
  let off = 0;
  const out = new Array<OipTensor>(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i];
    out[i] = t;
    const size = t.parameters?.binary_data_size;
    if (size === undefined) continue;
    if (t.data !== undefined) throw bad('an input has both data and binary_data_size', { input: t.name });
    const width = BYTES[t.datatype];
    if (!width) throw bad('binary data is supported for FP32 and INT64 inputs', { input: t.name, datatype: t.datatype });
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (size !== count * width) throw bad('binary_data_size does not match shape and datatype', { input: t.name, expected: count * width, got: size });
    if (off + size > tail.length) throw bad('the body holds fewer binary bytes than the inputs declare', { input: t.name, available: tail.length - off, needed: size });
    // A view of the body where it is aligned for the type (the body lives until the request is
    // answered, and nothing here keeps it longer); else an aligned copy (Buffer.from: small ones
    // come from Node's buffer pool, 8-byte aligned, not a new zeroed allocation each).
    const bytes = (tail.byteOffset + off) % width === 0 ? tail.subarray(off, off + size) : Buffer.from(tail.subarray(off, off + size));
    const data = width === 4 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new BigInt64Array(bytes.buffer, bytes.byteOffset, count);
    out[i] = { name: t.name, shape: t.shape, datatype: t.datatype, parameters: t.parameters, data };
    off += size;
  }
  if (off !== tail.length) throw bad('the body holds more binary bytes than the inputs declare', { declared: off, got: tail.length });
  return out;
}

/** Whether the response should carry the output as binary. */
export function wantsBinaryOutput(parameters: Record<string, unknown> | undefined, outputs: Array<{ parameters?: Record<string, unknown> }> | undefined): boolean {
  return parameters?.binary_data_output === true || (outputs ?? []).some((o) => o.parameters?.binary_data === true);
}

/** What a binary response's JSON header says besides its outputs (the OIP response fields). */
export interface BinaryAnswer {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, string>;
}

const q = JSON.stringify;

/**
 * A binary answer's header is the same for every answer of one endpoint, served version and
 * output layout but for its `id`: its bytes before and after the id, by a key naming everything
 * else (each part length-prefixed, so distinct answers never share a key). Bounded like the
 * request headers above (emptied when full).
 */
interface HeaderTemplate {
  head: Buffer;
  tail: Buffer;
  /** What it was made from, for the comparison with the previous answer (sameAnswer). */
  modelName: string;
  modelVersion: string;
  paramKeys: string[];
  paramValues: string[];
  names: string[];
  shapes: number[][];
  bytes: number[];
}
const TEMPLATE_ENTRIES = 256;
const templates = new Map<string, HeaderTemplate>();
const part = (s: string) => `${s.length}:${s}`;

/** The template of the previous answer. */
let lastTemplate: HeaderTemplate | null = null;

/** Whether `t` was made from an answer equal to this one but for its id (no allocation: most answers repeat the previous one's layout). */
function sameAnswer(t: HeaderTemplate, answer: BinaryAnswer, outputs: ReadonlyArray<{ name: string; shape: readonly number[] }>, data: readonly Float32Array[]): boolean {
  if (t.modelName !== answer.model_name || t.modelVersion !== answer.model_version || t.names.length !== outputs.length) return false;
  // Parameters: the same keys in the same order (the text follows the order), the same values.
  let i = 0;
  for (const k in answer.parameters) {
    if (k !== t.paramKeys[i] || answer.parameters[k] !== t.paramValues[i]) return false;
    i++;
  }
  if (i !== t.paramKeys.length) return false;
  for (let o = 0; o < outputs.length; o++) {
    const shape = outputs[o].shape;
    const had = t.shapes[o];
    if (t.names[o] !== outputs[o].name || t.bytes[o] !== data[o].byteLength || had.length !== shape.length) return false;
    for (let d = 0; d < shape.length; d++) if (had[d] !== shape[d]) return false;
  }
  return true;
}

function templateOf(answer: BinaryAnswer, outputs: ReadonlyArray<{ name: string; shape: readonly number[] }>, data: readonly Float32Array[]): HeaderTemplate {
  if (lastTemplate !== null && sameAnswer(lastTemplate, answer, outputs, data)) return lastTemplate;
  let key = part(answer.model_name) + part(answer.model_version);
  const params = answer.parameters;
  for (const k in params) key += part(k) + part(params[k]);
  key += `|${outputs.length}`;
  for (let i = 0; i < outputs.length; i++) key += part(outputs[i].name) + part(outputs[i].shape.join(',')) + `${data[i].byteLength};`;
  let t = templates.get(key);
  if (t === undefined) {
    let json = `,"parameters":${q(params)},"outputs":[`;
    for (let i = 0; i < outputs.length; i++) {
      json += `${i ? ',' : ''}{"name":${q(outputs[i].name)},"datatype":"FP32","shape":[${outputs[i].shape.join(',')}],"parameters":{"binary_data_size":${data[i].byteLength}}}`;
    }
    json += ']}';
    t = {
      head: Buffer.from(`{"model_name":${q(answer.model_name)},"model_version":${q(answer.model_version)},"id":`, 'utf8'),
      tail: Buffer.from(json, 'utf8'),
      modelName: answer.model_name,
      modelVersion: answer.model_version,
      paramKeys: Object.keys(params),
      paramValues: Object.values(params),
      names: outputs.map((o) => o.name),
      shapes: outputs.map((o) => [...o.shape]),
      bytes: data.map((d) => d.byteLength),
    };
    if (templates.size >= TEMPLATE_ENTRIES) templates.clear();
    templates.set(key, t);
  }
  lastTemplate = t;
  return t;
}

/**
 * A response body: the JSON header, then the bytes of each output in header order (FP32,
 * little-endian). The header is exactly JSON.stringify of `{ ...answer, outputs: [{ name,
 * datatype: 'FP32', shape, parameters: { binary_data_size } }, ...] }` (keys in that order),
 * put together from a cached template and the answer's id: a CPU profile of the batched binary
 * route had building it among its largest items (docs/serving.md). `shape` holds integers.
 */
export function binaryResponse(answer: BinaryAnswer, outputs: ReadonlyArray<{ name: string; shape: readonly number[] }>, data: readonly Float32Array[]): { body: Buffer; headerLength: number } {
  const t = templateOf(answer, outputs, data);
  const id = q(answer.id);
  const idBytes = Buffer.byteLength(id, 'utf8');
  const headerLength = t.head.length + idBytes + t.tail.length;
  let size = 0;
  for (const o of data) size += o.byteLength;
  // One allocation: the header written in place, then each output's bytes.
  const body = Buffer.allocUnsafe(headerLength + size);
  body.set(t.head, 0);
  let off = t.head.length;
  // Ids are ASCII in practice (ids.ts): byte by byte, without a call into the runtime.
  if (idBytes === id.length) for (let i = 0; i < id.length; i++) body[off++] = id.charCodeAt(i);
  else off += body.write(id, off, 'utf8');
  body.set(t.tail, off);
  off += t.tail.length;
  for (const o of data) {
    body.set(new Uint8Array(o.buffer, o.byteOffset, o.byteLength), off);
    off += o.byteLength;
  }
  return { body, headerLength };
}
