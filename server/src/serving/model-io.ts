import type { TensorSignature } from '@flotilla/protocol';
import type { VersionRecord } from '../store/records.js';

/**
 * What a loaded model consumes and produces per row (the batch dimension excluded). A model may
 * have several inputs and outputs (ONNX models here); the batcher sees one packed row per
 * example: the row of every input one after the other (`offset`, `width`), and likewise for the
 * outputs, so that requests concatenate and split along rows whatever the model's arity (ONNX
 * models and tfjs models with several inputs or outputs alike).
 * Values travel as float32 in the batch; an INT64 or INT32 input is converted back for the model
 * (so its values must be integers of magnitude at most 2^24, checked at parse).
 */
export interface TensorIO {
  name: string;
  /** OIP datatype the model takes or gives: FP32, INT64 or INT32. */
  datatype: 'FP32' | 'INT64' | 'INT32';
  shape: number[];
  width: number;
  /** Offset of this tensor in a packed row. */
  offset: number;
}

export interface ModelIO {
  platform: 'tensorflowjs' | 'onnxruntime';
  inputs: TensorIO[];
  outputs: TensorIO[];
  /** Packed row widths: sums over inputs and outputs. */
  rowWidth: number;
  outWidth: number;
  /** The first input and output (single-tensor models: the only ones). */
  inputName: string;
  inputShape: number[];
  outputName: string;
  outputShape: number[];
}

type Named = { name: string; datatype: TensorIO['datatype']; shape: number[] };

function lay(ts: Named[]): { list: TensorIO[]; width: number } {
  let offset = 0;
  const list = ts.map((t) => {
    const width = t.shape.reduce((a, b) => a * b, 1);
    const io = { ...t, width, offset };
    offset += width;
    return io;
  });
  return { list, width: offset };
}

export function modelIO(platform: ModelIO['platform'], inputs: Named[], outputs: Named[]): ModelIO {
  const i = lay(inputs);
  const o = lay(outputs);
  return {
    platform,
    inputs: i.list,
    outputs: o.list,
    rowWidth: i.width,
    outWidth: o.width,
    inputName: i.list[0].name,
    inputShape: i.list[0].shape,
    outputName: o.list[0].name,
    outputShape: o.list[0].shape,
  };
}

/** OIP datatype of an ONNX element type that serving accepts (null: unsupported). */
export function oipOfOnnx(elemType: string): TensorIO['datatype'] | null {
  return elemType === 'FLOAT' ? 'FP32' : elemType === 'INT64' ? 'INT64' : elemType === 'INT32' ? 'INT32' : null;
}

/** The I/O of an ONNX version, from the signature recorded at import (batch dimension dropped). */
export function onnxIO(record: VersionRecord): ModelIO {
  const sig = record.onnx!;
  const t = (x: { name: string; elemType: string; shape: number[] }): Named => ({ name: x.name, datatype: oipOfOnnx(x.elemType) ?? 'FP32', shape: x.shape.slice(1) });
  return modelIO('onnxruntime', sig.inputs.map(t), sig.outputs.map(t));
}

/**
 * The I/O of a tfjs model from its signature (tfjsSignature of @flotilla/model, or a spec's
 * recorded one). A dynamic dimension after the batch counts as 1, as a spec's inputShape has it
 * (imports refuse them on models with several inputs or outputs).
 */
export function tfjsIO(sig: { inputs: TensorSignature[]; outputs: TensorSignature[] }): ModelIO {
  const t = (x: TensorSignature): Named => ({ name: x.name, datatype: x.dtype === 'int32' ? 'INT32' : 'FP32', shape: fixed(x.shape.slice(1)) });
  return modelIO('tensorflowjs', sig.inputs.map(t), sig.outputs.map(t));
}
const fixed = (shape: number[]) => shape.map((d) => (d < 0 ? 1 : d));

/** Width of a packed input row of a version (tfjs: its signature, else inputShape; ONNX: all inputs). */
export function inputWidth(record: VersionRecord): number {
  if (record.onnx) return onnxIO(record).rowWidth;
  const spec = record.spec!;
  if (spec.signature) return tfjsIO(spec.signature).rowWidth;
  return spec.inputShape.reduce((a, b) => a * b, 1);
}

/** Interleave per-tensor blocks (`rows` rows each) into packed rows. */
export function packRows(parts: Float32Array[], ts: TensorIO[], width: number, rows: number): Float32Array {
  if (ts.length === 1) return parts[0];
  const out = new Float32Array(rows * width);
  for (let k = 0; k < ts.length; k++) {
    const { width: w, offset } = ts[k];
    const src = parts[k];
    for (let r = 0; r < rows; r++) out.set(src.subarray(r * w, (r + 1) * w), r * width + offset);
  }
  return out;
}

/** Split packed rows into one block per tensor. */
export function unpackRows(packed: Float32Array, ts: TensorIO[], width: number, rows: number): Float32Array[] {
  if (ts.length === 1) return [packed];
  return ts.map(({ width: w, offset }) => {
    const out = new Float32Array(rows * w);
    for (let r = 0; r < rows; r++) out.set(packed.subarray(r * width + offset, r * width + offset + w), r * w);
    return out;
  });
}
