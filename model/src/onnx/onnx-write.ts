import { Writer } from './protobuf.js';

/**
 * A small ONNX writer: enough to build graphs in tests and to export Flotilla's dense models
 * (`denseToOnnx`). Field numbers follow onnx/onnx.proto; the result is a ModelProto file that
 * onnxruntime loads. Dimensions given as -1 are written as the symbolic `batch`.
 */
export interface OnnxTensorSpec {
  name: string;
  /** TensorProto.DataType: 1 FLOAT, 6 INT32, 7 INT64. */
  elemType: number;
  shape: number[];
}
export interface OnnxInitializer {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array;
}
export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** Integer, float or int-list attributes. */
  attributes?: Record<string, number | number[] | { float: number }>;
}
export interface OnnxGraphSpec {
  name?: string;
  inputs: OnnxTensorSpec[];
  outputs: OnnxTensorSpec[];
  initializers?: OnnxInitializer[];
  nodes: OnnxNode[];
  opset?: number;
  irVersion?: number;
}

function valueInfo(t: OnnxTensorSpec): Writer {
  const shape = new Writer();
  for (const d of t.shape) shape.message(1, d < 0 ? new Writer().string(2, 'batch') : new Writer().int(1, d));
  const tensor = new Writer().int(1, t.elemType).message(2, shape);
  return new Writer().string(1, t.name).message(2, new Writer().message(1, tensor));
}

function attribute(name: string, v: number | number[] | { float: number }): Writer {
  const a = new Writer().string(1, name);
  if (Array.isArray(v)) return a.packedInts(8, v).int(20, 7); // INTS
  if (typeof v === 'object') return a.float(2, v.float).int(20, 1); // FLOAT
  return a.int(3, v).int(20, 2); // INT
}

function initializer(t: OnnxInitializer): Writer {
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return new Writer()
    .packedInts(1, t.dims)
    .int(2, t.data instanceof Float32Array ? 1 : 7)
    .string(8, t.name)
    .bytes(9, raw);
}

/** Encode a model: one graph in the default domain. */
export function writeOnnx(g: OnnxGraphSpec): Uint8Array {
  const graph = new Writer();
  g.nodes.forEach((n, i) => {
    const node = new Writer();
    for (const x of n.inputs) node.string(1, x);
    for (const y of n.outputs) node.string(2, y);
    node.string(3, n.name ?? `${n.opType.toLowerCase()}_${i}`).string(4, n.opType);
    for (const [k, v] of Object.entries(n.attributes ?? {})) node.message(5, attribute(k, v));
    graph.message(1, node);
  });
  graph.string(2, g.name ?? 'graph');
  for (const t of g.initializers ?? []) graph.message(5, initializer(t));
  for (const t of g.inputs) graph.message(11, valueInfo(t));
  for (const t of g.outputs) graph.message(12, valueInfo(t));
  return new Writer()
    .int(1, g.irVersion ?? 8)
    .string(2, 'flotilla')
    .string(3, '0.1.0')
    .message(7, graph)
    .message(8, new Writer().string(1, '').int(2, g.opset ?? 13))
    .finish();
}

/** One dense layer: y = activation(x W + b), W of shape [in, out] row-major (tfjs's kernel layout). */
export interface DenseLayer {
  kernel: Float32Array;
  bias: Float32Array;
  inputs: number;
  units: number;
  activation: 'linear' | 'relu' | 'sigmoid' | 'tanh' | 'softmax';
}

const ACTIVATION_OPS: Record<DenseLayer['activation'], string | null> = { linear: null, relu: 'Relu', sigmoid: 'Sigmoid', tanh: 'Tanh', softmax: 'Softmax' };

/** A stack of dense layers as an ONNX graph (Gemm plus activation per layer), batch dimension symbolic. */
export function denseToOnnx(layers: DenseLayer[], io: { input: string; output: string }): Uint8Array {
  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [];
  let x = io.input;
  layers.forEach((l, i) => {
    const last = i === layers.length - 1;
    const act = ACTIVATION_OPS[l.activation];
    const gemmOut = last && !act ? io.output : `dense${i}`;
    initializers.push({ name: `W${i}`, dims: [l.inputs, l.units], data: l.kernel }, { name: `B${i}`, dims: [l.units], data: l.bias });
    nodes.push({ opType: 'Gemm', inputs: [x, `W${i}`, `B${i}`], outputs: [gemmOut] });
    x = gemmOut;
    if (act) {
      const out = last ? io.output : `act${i}`;
      nodes.push({ opType: act, inputs: [x], outputs: [out], ...(act === 'Softmax' ? { attributes: { axis: -1 } } : {}) });
      x = out;
    }
  });
  return writeOnnx({
    inputs: [{ name: io.input, elemType: 1, shape: [-1, layers[0].inputs] }],
    outputs: [{ name: io.output, elemType: 1, shape: [-1, layers[layers.length - 1].units] }],
    initializers,
    nodes,
  });
}
