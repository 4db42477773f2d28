import { int, readFields, repeatedInts, text, type Field } from './protobuf.js';

/**
 * What serving needs to know of an ONNX model, read from its ModelProto (onnx/onnx.proto field
 * numbers): IR version, operator sets, and the graph's real inputs (initializers excluded, as
 * IR < 4 lists them among the inputs) and outputs with element types and shapes. Dimensions
 * without a fixed value (a `dim_param` or nothing) are -1.
 */
export interface OnnxTensorInfo {
  name: string;
  /** TensorProto.DataType name: FLOAT, INT64, ... */
  elemType: string;
  shape: number[];
}

export interface OnnxInfo {
  irVersion: number;
  opsets: Array<{ domain: string; version: number }>;
  producer: string;
  inputs: OnnxTensorInfo[];
  outputs: OnnxTensorInfo[];
  nodes: number;
  opTypes: string[];
  initializers: number;
  /** Elements of all initializers together (the model's parameter count). */
  parameters: number;
  /** Initializers stored outside the file (data_location EXTERNAL): unusable from an upload. */
  externalData: boolean;
}

export const ONNX_ELEM_TYPES: Record<number, string> = {
  1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING', 9: 'BOOL',
  10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
};

export class OnnxFormatError extends Error {}

const all = (fs: Field[], n: number) => fs.filter((f) => f.field === n);
const one = (fs: Field[], n: number) => fs.find((f) => f.field === n);
const str = (fs: Field[], n: number): string => {
  const f = one(fs, n);
  return f && f.wire === 2 ? text(f.value) : '';
};
const num = (fs: Field[], n: number): number | undefined => {
  const f = one(fs, n);
  return f && f.wire === 0 ? int(f.value) : undefined;
};
const sub = (f: Field): Field[] => {
  if (f.wire !== 2) throw new OnnxFormatError(`field ${f.field} is not a message`);
  return readFields(f.value);
};

function valueInfo(f: Field): OnnxTensorInfo {
  const vi = sub(f);
  const name = str(vi, 1);
  const type = one(vi, 2);
  const tensor = type ? one(sub(type), 1) : undefined;
  if (!tensor) return { name, elemType: 'NON_TENSOR', shape: [] };
  const t = sub(tensor);
  const elem = num(t, 1) ?? 0;
  const shapeField = one(t, 2);
  const shape = shapeField
    ? all(sub(shapeField), 1).map((d) => {
        const v = num(sub(d), 1);
        return v !== undefined && v > 0 ? v : -1;
      })
    : [];
  return { name, elemType: ONNX_ELEM_TYPES[elem] ?? `TYPE_${elem}`, shape };
}

/** Parse a model file; OnnxFormatError when it is not a readable ModelProto with a graph. */
export function readOnnx(bytes: Uint8Array): OnnxInfo {
  let model: Field[];
  try {
    model = readFields(bytes);
    const graphField = one(model, 7);
    if (!graphField) throw new OnnxFormatError('the file has no graph (is it an ONNX model?)');
    const graph = sub(graphField);
    const inits = all(graph, 5).map(sub);
    const initNames = new Set(inits.map((t) => str(t, 8)));
    const nodes = all(graph, 1).map(sub);
    return {
      irVersion: num(model, 1) ?? 0,
      opsets: all(model, 8).map((f) => {
        const o = sub(f);
        return { domain: str(o, 1), version: num(o, 2) ?? 0 };
      }),
      producer: str(model, 2),
      inputs: all(graph, 11).map(valueInfo).filter((i) => !initNames.has(i.name)),
      outputs: all(graph, 12).map(valueInfo),
      nodes: nodes.length,
      opTypes: [...new Set(nodes.map((n) => str(n, 4)))].sort(),
      initializers: inits.length,
      parameters: inits.reduce((n, t) => n + repeatedInts(all(t, 1)).reduce((a, d) => a * d, 1), 0),
      externalData: inits.some((t) => num(t, 14) === 1),
    };
  } catch (err) {
    if (err instanceof OnnxFormatError) throw err;
    throw new OnnxFormatError(`not a valid ONNX protobuf: ${(err as Error).message}`);
  }
}
