import * as tf from '@tensorflow/tfjs';
import { AppError, type LossName } from '@flotilla/protocol';
import { gatherRows, type Dataset, type Example, type LabelKind, type LocalData, type TensorData } from './data.js';

/**
 * Turns any LocalData into what tfjs trains on, checking it against the model once at this
 * boundary: FL_ERR_DATA_BAD_SHAPE when examples do not have the model's input shape,
 * FL_ERR_DATA_BAD_LABELS when the labels' count, width or values do not fit (class ids out of
 * range, rows of the wrong width for the model's outputs).
 */
export interface ModelIO {
  /** Per-example input shape (null: any size). */
  input: Array<number | null>;
  /** Values per example the model outputs. */
  outputs: number;
}

export function modelIO(model: tf.LayersModel): ModelIO {
  const out = model.outputs[0].shape;
  return { input: model.inputs[0].shape.slice(1), outputs: (out[out.length - 1] as number | null) ?? 1 };
}

export function isStreamed(d: LocalData): d is tf.data.Dataset<Example> {
  return typeof (d as tf.data.Dataset<Example>).iterator === 'function' && typeof (d as tf.data.Dataset<Example>).batch === 'function';
}

function isFlat(d: LocalData): d is Dataset {
  return (d as Dataset).x instanceof Float32Array && typeof (d as Dataset).inputSize === 'number';
}

const sameShape = (want: Array<number | null>, got: number[]) => want.length === got.length && want.every((d, i) => d === null || d === got[i]);

function badShape(want: Array<number | null>, got: number[]): AppError {
  return new AppError('FL_ERR_DATA_BAD_SHAPE', { expected: want, got, why: 'each example must have the model input shape' });
}

/** Example shape: the given one, else the model's when the row size matches it, else the flat row. */
function exampleShape(io: ModelIO, rowSize: number, given?: number[]): number[] {
  if (given) {
    if (given.reduce((a, b) => a * b, 1) !== rowSize) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { inputShape: given, rowSize, why: 'inputShape does not match the row size' });
    return given;
  }
  if (io.input.every((d) => d !== null) && (io.input as number[]).reduce((a, b) => a * b, 1) === rowSize) return io.input as number[];
  return [rowSize];
}

/** Labels as the loss needs them: class ids become one-hot (or stay ids for the sparse loss); rows must be `outputs` wide. */
function labelTensor(y: tf.Tensor, n: number, kind: LabelKind | undefined, io: ModelIO, loss: LossName, numClasses?: number): tf.Tensor {
  if (y.shape[0] !== n) throw new AppError('FL_ERR_DATA_BAD_LABELS', { examples: n, labels: y.shape[0], why: 'one label (row) per example' });
  const width = y.shape.slice(1).reduce((a, b) => a * b, 1);
  const ids = kind === 'classIds' || (kind === undefined && width === 1 && (loss === 'sparseCategoricalCrossentropy' || (io.outputs > 1 && (y.dtype === 'int32' || loss === 'categoricalCrossentropy'))));
  if (ids) {
    const classes = numClasses ?? io.outputs;
    if (width !== 1) throw new AppError('FL_ERR_DATA_BAD_LABELS', { why: 'class ids are one integer per example', width });
    const v = y.dataSync();
    for (let i = 0; i < v.length; i++) {
      if (!Number.isInteger(v[i]) || v[i] < 0 || v[i] >= classes) throw new AppError('FL_ERR_DATA_BAD_LABELS', { index: i, label: v[i], classes, why: 'class id out of range' });
    }
    if (loss === 'sparseCategoricalCrossentropy') return tf.tidy(() => y.reshape([n, 1]).toFloat());
    return tf.tidy(() => tf.oneHot(y.reshape([n]).toInt(), io.outputs).toFloat());
  }
  if (width !== io.outputs) throw new AppError('FL_ERR_DATA_BAD_LABELS', { why: `label rows must have ${io.outputs} values (the model's outputs)`, width });
  return tf.tidy(() => y.reshape([n, io.outputs]).toFloat());
}

/** In-memory data as tensors [n, ...inputShape] and labels; the caller disposes them. */
export function toTensors(data: Dataset | TensorData, io: ModelIO, loss: LossName): { xs: tf.Tensor; ys: tf.Tensor; n: number } {
  if (isFlat(data)) {
    if (!(data.inputSize > 0) || (!data.indices && data.x.length % data.inputSize !== 0)) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { inputSize: data.inputSize, values: data.x.length });
    const { x, y, n } = gatherRows(data);
    if (!data.indices && data.x.length / data.inputSize !== n) {
      throw new AppError('FL_ERR_DATA_BAD_LABELS', { examples: data.x.length / data.inputSize, labels: n, why: 'one label (row) per example' });
    }
    const shape = exampleShape(io, data.inputSize, data.inputShape);
    if (!sameShape(io.input, shape)) throw badShape(io.input, shape);
    const per = data.labelSize ?? 1;
    const xs = tf.tensor(x, [n, ...shape], 'float32');
    const yRaw = tf.tensor(y, per === 1 ? [n] : [n, per], y instanceof Int32Array ? 'int32' : 'float32');
    try {
      return { xs, ys: labelTensor(yRaw, n, data.labels, io, loss, data.numClasses), n };
    } catch (err) {
      xs.dispose();
      throw err;
    } finally {
      yRaw.dispose();
    }
  }
  const own: tf.Tensor[] = [];
  try {
    let xs = data.xs instanceof tf.Tensor ? data.xs : (own[own.length] = tf.tensor(data.xs as number[]));
    if (data.inputShape) {
      const n = xs.shape[0];
      xs = own[own.length] = xs.reshape([n, ...exampleShape(io, xs.size / Math.max(1, n), data.inputShape)]);
    }
    const n = xs.shape[0];
    if (!sameShape(io.input, xs.shape.slice(1))) throw badShape(io.input, xs.shape.slice(1));
    const ysIn = data.ys instanceof tf.Tensor ? data.ys : (own[own.length] = tf.tensor(data.ys as number[], undefined, data.ys instanceof Int32Array || data.ys instanceof Uint8Array ? 'int32' : undefined));
    const ys = labelTensor(ysIn, n, data.labels, io, loss);
    return { xs: xs.clone(), ys, n };
  } finally {
    tf.dispose(own);
  }
}

/**
 * A streamed dataset, checked on its first example, with labels mapped as toTensors does and
 * batched by `batchSize`. `count()` is the number of examples seen so far.
 */
export async function toBatches(data: tf.data.Dataset<Example>, io: ModelIO, loss: LossName, batchSize: number, kind?: LabelKind): Promise<{ batches: tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>; count: () => number }> {
  const first = await (await data.take(1).iterator()).next();
  if (first.done) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: 'the dataset is empty' });
  const e = first.value as Example;
  if (!sameShape(io.input, e.xs.shape)) throw badShape(io.input, e.xs.shape);
  labelTensor(e.ys.reshape([1, ...(e.ys.shape.length ? e.ys.shape : [1])]), 1, kind, io, loss).dispose();
  tf.dispose([e.xs, e.ys]);
  let seen = 0;
  const batches = data
    .map((ex) => {
      seen++;
      const y = labelTensor(ex.ys.reshape([1, ...(ex.ys.shape.length ? ex.ys.shape : [1])]), 1, kind, io, loss);
      return { xs: ex.xs, ys: y.reshape(y.shape.slice(1)) };
    })
    .batch(batchSize);
  return { batches: batches as unknown as tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }>, count: () => seen };
}
