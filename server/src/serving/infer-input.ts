import { AppError } from '../errors.js';

/** What a loaded model consumes and produces, per row (the batch dimension excluded). */
export interface ModelIO {
  inputName: string;
  inputShape: number[];
  rowWidth: number;
  outputName: string;
  outputShape: number[];
  outWidth: number;
}

/** Rows of input, row-major, ready for the batcher. */
export interface ParsedInput {
  data: Float32Array;
  rows: number;
}

/** Open Inference Protocol datatypes accepted (converted to float32 for tfjs); BOOL and BYTES are not. */
const INT_RANGES: Record<string, [number, number]> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};
/**
 * Largest magnitude a float datatype may carry here. Every model computes in float32, so FP64
 * values past float32's range would turn into Infinity: they are refused like FP32's.
 */
const FLOAT_LIMITS: Record<string, number> = { FP16: 65504, FP32: 3.4028234663852886e38, FP64: 3.4028234663852886e38 };
const FLOATS = new Set(Object.keys(FLOAT_LIMITS));
export const OIP_DATATYPES = [...FLOATS, ...Object.keys(INT_RANGES)];

interface Range {
  integer: boolean;
  min: number;
  max: number;
  datatype: string;
}

const bad = (why: string, details: Record<string, unknown> = {}) => new AppError('FL_ERR_SERVING_BAD_INPUT', { why, ...details });

/** Dimensions of a nested array, read along its first elements. */
function shapeOf(v: unknown): number[] {
  const s: number[] = [];
  let x = v;
  while (Array.isArray(x)) {
    s.push(x.length);
    if (x.length === 0) break;
    x = x[0];
  }
  return s;
}

/**
 * Copy the numbers of `v` (nested exactly as `shape`, row-major) into `out` from `pos`; returns the
 * next position. Ragged arrays, non-numbers and out-of-range integers throw FL_ERR_SERVING_BAD_INPUT.
 */
function fill(v: unknown, shape: number[], depth: number, out: Float32Array, pos: number, range: Range, input: string): number {
  if (depth === shape.length) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad('data must be numbers', { input, index: pos, got: v === null ? 'null' : typeof v });
    if (range.integer && (!Number.isInteger(v) || v < range.min || v > range.max)) throw bad('integer datatype holds a value outside its range', { input, index: pos, value: v });
    if (!range.integer && !(Math.abs(v) <= range.max && Number.isFinite(Math.fround(v)))) {
      throw bad('value outside the range of its datatype (models compute in float32)', { input, index: pos, value: v, datatype: range.datatype, maxAbs: range.max });
    }
    out[pos] = v;
    return pos + 1;
  }
  if (!Array.isArray(v) || v.length !== shape[depth]) {
    throw bad('data is ragged or does not match its shape', { input, depth, expected: shape[depth], got: Array.isArray(v) ? v.length : typeof v });
  }
  for (let i = 0; i < v.length; i++) pos = fill(v[i], shape, depth + 1, out, pos, range, input);
  return pos;
}

/** Binary tensor data (see binary-tensors.ts), already of the declared type: checked, then used as float32. */
function fromBinary(data: Float32Array | BigInt64Array, count: number, range: Range, input: string): Float32Array {
  if (data.length !== count) throw bad('data length does not match shape', { input, expected: count, got: data.length });
  if (data instanceof Float32Array) {
    for (let i = 0; i < count; i++) if (!Number.isFinite(data[i])) throw bad('data must be finite numbers', { input, index: i, value: String(data[i]) });
    return data;
  }
  const out = new Float32Array(count);
  const lo = BigInt(range.min);
  const hi = BigInt(range.max);
  for (let i = 0; i < count; i++) {
    const v = data[i];
    if (v < lo || v > hi) throw bad('integer datatype holds a value outside its range', { input, index: i, value: String(v) });
    out[i] = Number(v);
  }
  return out;
}

/** Flat (any nesting that matches `shape`, or fully flat) numeric data into a new Float32Array of product(shape). */
export function toFloat32(data: unknown, shape: number[], datatype: string, input: string): Float32Array {
  const ints = INT_RANGES[datatype];
  if (!ints && !FLOATS.has(datatype)) throw bad('unsupported datatype', { input, datatype, supported: OIP_DATATYPES });
  const range: Range = ints ? { integer: true, min: ints[0], max: ints[1], datatype } : { integer: false, min: -FLOAT_LIMITS[datatype], max: FLOAT_LIMITS[datatype], datatype };
  const count = shape.reduce((a, b) => a * b, 1);
  if (data instanceof Float32Array || data instanceof BigInt64Array) return fromBinary(data, count, range, input);
  if (!Array.isArray(data)) throw bad('data must be an array', { input });
  const out = new Float32Array(count);
  const nested = data.length > 0 && Array.isArray(data[0]);
  if (nested) {
    const got = shapeOf(data);
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) throw bad('nested data does not match shape', { input, shape, dataShape: got });
    fill(data, shape, 0, out, 0, range, input);
  } else {
    if (data.length !== count) throw bad('data length does not match shape', { input, shape, expected: count, got: data.length });
    fill(data, [count], 0, out, 0, range, input);
  }
  return out;
}

function checkRows(rows: number, maxRows: number, input: string): void {
  if (rows < 1) throw bad('the batch dimension must be at least 1', { input });
  if (rows > maxRows) throw bad('too many rows in one request', { input, rows, maxRows });
}

export interface OipTensor {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown;
  parameters?: Record<string, unknown>;
}

/** The `inputs` of an Open Inference Protocol request, for a single-input model. */
export function parseOipInputs(inputs: OipTensor[], io: ModelIO, maxRows: number): ParsedInput {
  if (inputs.length !== 1) throw bad('the model takes exactly one input', { expected: [io.inputName], got: inputs.map((t) => t.name) });
  const t = inputs[0];
  if (t.name !== io.inputName) throw bad('unknown input name', { expected: [io.inputName], got: t.name });
  const want = [-1, ...io.inputShape];
  if (t.shape.length !== want.length || t.shape.some((d, i) => i > 0 && d !== want[i])) {
    throw bad('input shape does not match the model', { input: t.name, expected: want, got: t.shape });
  }
  checkRows(t.shape[0], maxRows, t.name);
  return { data: toFloat32(t.data, t.shape, t.datatype, t.name), rows: t.shape[0] };
}

/** The requested `outputs` of an OIP request must name the model's output. */
export function checkOipOutputs(outputs: Array<{ name: string }> | undefined, io: ModelIO): void {
  for (const o of outputs ?? []) if (o.name !== io.outputName) throw bad('unknown output name', { expected: [io.outputName], got: o.name });
}

/** One example (TF Serving row format): a tensor of the row shape, or `{ <inputName>: tensor }`. */
function rowTensor(x: unknown, io: ModelIO, index: number): unknown {
  if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
    const keys = Object.keys(x);
    if (keys.length !== 1 || keys[0] !== io.inputName) throw bad('unknown input name', { instance: index, expected: [io.inputName], got: keys });
    return (x as Record<string, unknown>)[keys[0]];
  }
  return x;
}

/**
 * A TF Serving REST predict body: `instances` (row format: one example per element) or `inputs`
 * (columnar: one tensor with the batch dimension first, or `{ <inputName>: tensor }`), never both.
 */
export function parseTfServingBody(body: { instances?: unknown; inputs?: unknown }, io: ModelIO, maxRows: number): { input: ParsedInput; format: 'row' | 'columnar' } {
  const hasInstances = body.instances !== undefined;
  const hasInputs = body.inputs !== undefined;
  if (hasInstances === hasInputs) throw bad('give exactly one of "instances" or "inputs"');
  const rowShape = io.inputShape;
  if (hasInstances) {
    if (!Array.isArray(body.instances)) throw bad('"instances" must be a list');
    const rows = body.instances.length;
    checkRows(rows, maxRows, io.inputName);
    const data = new Float32Array(rows * io.rowWidth);
    for (let i = 0; i < rows; i++) {
      const t = rowTensor(body.instances[i], io, i);
      const flat = Array.isArray(t) && t.length > 0 && !Array.isArray(t[0]) && rowShape.length > 1 ? [io.rowWidth] : rowShape;
      data.set(toFloat32(t, flat, 'FP32', `${io.inputName}[${i}]`), i * io.rowWidth);
    }
    return { input: { data, rows }, format: 'row' };
  }
  const t = rowTensor(body.inputs, io, 0);
  if (!Array.isArray(t)) throw bad('"inputs" must be a tensor (a list) or { <inputName>: tensor }');
  const rows = t.length;
  checkRows(rows, maxRows, io.inputName);
  return { input: { data: toFloat32(t, [rows, ...rowShape], 'FP32', io.inputName), rows }, format: 'columnar' };
}

/** Rows of a flat output as nested lists (TF Serving answers nested). */
export function nestRows(out: Float32Array, rows: number, width: number): number[][] {
  const res: number[][] = new Array(rows);
  for (let r = 0; r < rows; r++) res[r] = Array.from(out.subarray(r * width, (r + 1) * width));
  return res;
}
