import { AppError } from '../errors.js';
import { packRows, type ModelIO, type TensorIO } from './model-io.js';

export type { ModelIO };

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

/** Checks one value (at flat index `pos`) against its datatype and stores it. */
function put(v: unknown, out: Float32Array, pos: number, range: Range, input: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad('data must be numbers', { input, index: pos, got: v === null ? 'null' : typeof v });
  if (range.integer && (!Number.isInteger(v) || v < range.min || v > range.max)) throw bad('integer datatype holds a value outside its range', { input, index: pos, value: v });
  if (!range.integer && !(Math.abs(v) <= range.max && Number.isFinite(Math.fround(v)))) {
    throw bad('value outside the range of its datatype (models compute in float32)', { input, index: pos, value: v, datatype: range.datatype, maxAbs: range.max });
  }
  out[pos] = v;
}

/**
 * Copy the numbers of `v` (nested exactly as `shape`, row-major) into `out` from `pos`; returns the
 * next position. Ragged arrays, non-numbers and out-of-range integers throw FL_ERR_SERVING_BAD_INPUT.
 */
function fill(v: unknown, shape: number[], depth: number, out: Float32Array, pos: number, range: Range, input: string): number {
  if (depth === shape.length) {
    put(v, out, pos, range, input);
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
  // A Float64Array is a flat list of JSON numbers (infer-json.ts): checked exactly as that list.
  const flat = data instanceof Float64Array;
  if (!flat && !Array.isArray(data)) throw bad('data must be an array', { input });
  const list = data as ArrayLike<unknown>;
  const out = new Float32Array(count);
  if (!flat && list.length > 0 && Array.isArray(list[0])) {
    const got = shapeOf(data);
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) throw bad('nested data does not match shape', { input, shape, dataShape: got });
    fill(data, shape, 0, out, 0, range, input);
  } else {
    if (list.length !== count) throw bad('data length does not match shape', { input, shape, expected: count, got: list.length });
    for (let i = 0; i < count; i++) put(list[i], out, i, range, input);
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

/** Integers a float32 batch carries exactly: inputs an ONNX model takes as INT64/INT32 stay within it. */
const EXACT_INT = 2 ** 24;

/** Checks the values of one model input against the datatype the model takes. */
function checkModelType(data: Float32Array, t: TensorIO): Float32Array {
  if (t.datatype === 'FP32') return data;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isInteger(v) || Math.abs(v) > EXACT_INT) throw bad(`the model takes ${t.datatype} here: integers of magnitude at most 2^24`, { input: t.name, index: i, value: v });
  }
  return data;
}

const names = (ts: Array<{ name: string }>) => ts.map((t) => t.name);

/** The `inputs` of an Open Inference Protocol request: one tensor per model input, any order, equal batch sizes. */
export function parseOipInputs(inputs: OipTensor[], io: ModelIO, maxRows: number): ParsedInput {
  if (inputs.length !== io.inputs.length) {
    throw bad(io.inputs.length === 1 ? 'the model takes exactly one input' : `the model takes ${io.inputs.length} inputs`, { expected: names(io.inputs), got: names(inputs) });
  }
  const parts: Float32Array[] = [];
  let rows = -1;
  for (const want of io.inputs) {
    const t = inputs.find((x) => x.name === want.name);
    if (!t) throw bad('unknown input name', { expected: names(io.inputs), got: io.inputs.length === 1 ? inputs[0].name : names(inputs) });
    const shape = [-1, ...want.shape];
    if (t.shape.length !== shape.length || t.shape.some((d, i) => i > 0 && d !== shape[i])) {
      throw bad('input shape does not match the model', { input: t.name, expected: shape, got: t.shape });
    }
    if (rows >= 0 && t.shape[0] !== rows) throw bad('inputs differ in their batch dimension', { input: t.name, expected: rows, got: t.shape[0] });
    rows = t.shape[0];
    checkRows(rows, maxRows, t.name);
    parts.push(checkModelType(toFloat32(t.data, t.shape, t.datatype, t.name), want));
  }
  return { data: packRows(parts, io.inputs, io.rowWidth, rows), rows };
}

/** The requested `outputs` of an OIP request must name outputs of the model. */
export function checkOipOutputs(outputs: Array<{ name: string }> | undefined, io: ModelIO): void {
  for (const o of outputs ?? []) if (!io.outputs.some((x) => x.name === o.name)) throw bad('unknown output name', { expected: names(io.outputs), got: o.name });
}

/** One example (TF Serving row format): a tensor of the row shape, or `{ <inputName>: tensor, ... }` naming every input. */
function rowTensors(x: unknown, io: ModelIO, index: number): unknown[] {
  if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
    const keys = Object.keys(x);
    if (keys.length !== io.inputs.length || io.inputs.some((t) => !keys.includes(t.name))) throw bad('unknown input name', { instance: index, expected: names(io.inputs), got: keys });
    return io.inputs.map((t) => (x as Record<string, unknown>)[t.name]);
  }
  if (io.inputs.length > 1) throw bad('the model takes several inputs: name each', { instance: index, expected: names(io.inputs) });
  return [x];
}

/**
 * A TF Serving REST predict body: `instances` (row format: one example per element) or `inputs`
 * (columnar: one tensor with the batch dimension first, or `{ <inputName>: tensor, ... }`), never both.
 */
export function parseTfServingBody(body: { instances?: unknown; inputs?: unknown }, io: ModelIO, maxRows: number): { input: ParsedInput; format: 'row' | 'columnar' } {
  const hasInstances = body.instances !== undefined;
  const hasInputs = body.inputs !== undefined;
  if (hasInstances === hasInputs) throw bad('give exactly one of "instances" or "inputs"');
  if (hasInstances) {
    if (!Array.isArray(body.instances)) throw bad('"instances" must be a list');
    const rows = body.instances.length;
    checkRows(rows, maxRows, io.inputName);
    const parts = io.inputs.map((t) => new Float32Array(rows * t.width));
    for (let i = 0; i < rows; i++) {
      const ts = rowTensors(body.instances[i], io, i);
      io.inputs.forEach((want, k) => {
        const v = ts[k];
        const flat = Array.isArray(v) && v.length > 0 && !Array.isArray(v[0]) && want.shape.length > 1 ? [want.width] : want.shape;
        parts[k].set(checkModelType(toFloat32(v, flat, 'FP32', `${want.name}[${i}]`), want), i * want.width);
      });
    }
    return { input: { data: packRows(parts, io.inputs, io.rowWidth, rows), rows }, format: 'row' };
  }
  const ts = rowTensors(body.inputs, io, 0);
  let rows = -1;
  const parts = io.inputs.map((want, k) => {
    const t = ts[k];
    if (!Array.isArray(t)) throw bad('"inputs" must be a tensor (a list) or { <inputName>: tensor }', { input: want.name });
    if (rows >= 0 && t.length !== rows) throw bad('inputs differ in their batch dimension', { input: want.name, expected: rows, got: t.length });
    rows = t.length;
    checkRows(rows, maxRows, want.name);
    return checkModelType(toFloat32(t, [rows, ...want.shape], 'FP32', want.name), want);
  });
  return { input: { data: packRows(parts, io.inputs, io.rowWidth, rows), rows }, format: 'columnar' };
}

/** Rows of a flat output as nested lists (TF Serving answers nested). */
export function nestRows(out: Float32Array, rows: number, width: number): number[][] {
  const res: number[][] = new Array(rows);
  for (let r = 0; r < rows; r++) res[r] = Array.from(out.subarray(r * width, (r + 1) * width));
  return res;
}
