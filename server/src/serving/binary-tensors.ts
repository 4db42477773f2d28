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

/** Split a binary request body into its JSON header (parsed) and the binary tail. */
export function splitBinaryBody(body: Buffer, headerLength: unknown): { header: unknown; tail: Buffer } {
  const n = typeof headerLength === 'string' && /^[0-9]{1,10}$/.test(headerLength) ? Number(headerLength) : NaN;
  if (!Number.isInteger(n) || n < 2 || n > body.length) throw bad(`${HEADER_LENGTH} must be the byte length of the JSON header within the body`, { got: headerLength ?? null, bodyBytes: body.length });
  let header: unknown;
  try {
    header = JSON.parse(body.subarray(0, n).toString('utf8'));
  } catch {
    throw bad('the inference header is not JSON');
  }
  return { header, tail: body.subarray(n) };
}

/** Replace each binary input's data by a typed array read from `tail`; every byte must be used. */
export function attachBinaryInputs(inputs: OipTensor[], tail: Buffer): void {
  let off = 0;
  for (const t of inputs) {
    const size = t.parameters?.binary_data_size;
    if (size === undefined) continue;
    if (t.data !== undefined) throw bad('an input has both data and binary_data_size', { input: t.name });
    const width = BYTES[t.datatype];
    if (!width) throw bad('binary data is supported for FP32 and INT64 inputs', { input: t.name, datatype: t.datatype });
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (size !== count * width) throw bad('binary_data_size does not match shape and datatype', { input: t.name, expected: count * width, got: size });
    if (off + size > tail.length) throw bad('the body holds fewer binary bytes than the inputs declare', { input: t.name, available: tail.length - off, needed: size });
    // A view of the body where it is aligned for the type (the body lives until the request is
    // answered, and nothing here keeps it longer); else an aligned copy.
    const bytes = (tail.byteOffset + off) % width === 0 ? tail.subarray(off, off + size) : Buffer.from(tail.subarray(off, off + size));
    t.data = width === 4 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new BigInt64Array(bytes.buffer, bytes.byteOffset, count);
    off += size;
  }
  if (off !== tail.length) throw bad('the body holds more binary bytes than the inputs declare', { declared: off, got: tail.length });
}

/** Whether the response should carry the output as binary. */
export function wantsBinaryOutput(parameters: Record<string, unknown> | undefined, outputs: Array<{ parameters?: Record<string, unknown> }> | undefined): boolean {
  return parameters?.binary_data_output === true || (outputs ?? []).some((o) => o.parameters?.binary_data === true);
}

/** A response body: the JSON header, then the bytes of each output in header order (FP32, little-endian). */
export function binaryResponse(header: { outputs: Array<Record<string, unknown>> }, outputs: Float32Array[]): { body: Buffer; headerLength: number } {
  const json = JSON.stringify(header);
  const headerLength = Buffer.byteLength(json, 'utf8');
  let size = headerLength;
  for (const o of outputs) size += o.byteLength;
  // One allocation: the header written in place, then each output's bytes.
  const body = Buffer.allocUnsafe(size);
  let off = body.write(json, 0, 'utf8');
  for (const o of outputs) {
    body.set(new Uint8Array(o.buffer, o.byteOffset, o.byteLength), off);
    off += o.byteLength;
  }
  return { body, headerLength };
}
