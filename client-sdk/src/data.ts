import type * as tf from '@tensorflow/tfjs';

/**
 * How labels are given. `classIds`: one integer class per example (one-hot encoded for
 * categoricalCrossentropy); `oneHot`, `multiLabel` (0/1 per output) and `values` (real targets):
 * one row per example with as many values as the model has outputs.
 */
export type LabelKind = 'classIds' | 'oneHot' | 'multiLabel' | 'values';

/**
 * A device's local data as flat rows. Rows live in `x` (row-major, `inputSize` floats per row,
 * reshaped to `inputShape` or, when absent, to the model's input shape); labels in `y`,
 * `labelSize` values per row (default 1: a class id or one real value); `indices` selects this
 * device's rows, so many virtual devices can share one dataset without copies. The SDK only
 * reads these arrays.
 */
export interface Dataset {
  x: Float32Array;
  y: Uint8Array | Int32Array | Float32Array;
  inputSize: number;
  /** Per-example shape of a row (its product is inputSize), e.g. [28, 28, 1] or [64] token ids. */
  inputShape?: number[];
  /** With class ids: the number of classes (defaults to the model's outputs). */
  numClasses?: number;
  labelSize?: number;
  labels?: LabelKind;
  indices?: Uint32Array;
}

type Nested = number | Nested[];

/**
 * Tensors or nested arrays: `xs` of shape [n, ...inputShape] (or flat rows with `inputShape`),
 * `ys` with n rows (class ids, one-hot, multi-label or real values).
 */
export interface TensorData {
  xs: tf.Tensor | Nested[] | Float32Array;
  ys: tf.Tensor | Nested[] | Float32Array | Int32Array | Uint8Array;
  inputShape?: number[];
  labels?: LabelKind;
}

/** One example of a streamed dataset (tf.data.Dataset of these, unbatched; the SDK batches with the plan's batchSize). */
export type Example = {
  xs: tf.Tensor;
  ys: tf.Tensor;
  [k: string]: tf.Tensor;
};

/** What a device trains or evaluates on: flat rows, tensors or arrays, or a tf.data.Dataset of examples (for data that does not fit in memory). */
export type LocalData = Dataset | TensorData | tf.data.Dataset<Example>;

/** Supplies local training data and, optionally, held-out evaluation data. Called once per round. */
export interface DataProvider {
  train(): LocalData | Promise<LocalData>;
  evaluate?(): LocalData | Promise<LocalData>;
}

export function datasetSize(d: Dataset): number {
  const per = d.labelSize ?? 1;
  return d.indices ? d.indices.length : Math.floor(d.y.length / per);
}

/** Gather the selected rows into a dense feature matrix and label matrix (labelSize values per row). */
export function gatherRows(d: Dataset): { x: Float32Array; y: Float32Array | Int32Array; n: number } {
  const n = datasetSize(d);
  const per = d.labelSize ?? 1;
  if (!d.indices) {
    const y = d.y.subarray(0, n * per);
    return { x: d.x.subarray(0, n * d.inputSize), y: y instanceof Float32Array ? y : Int32Array.from(y), n };
  }
  const x = new Float32Array(n * d.inputSize);
  const y = d.y instanceof Float32Array ? new Float32Array(n * per) : new Int32Array(n * per);
  for (let i = 0; i < n; i++) {
    const r = d.indices[i];
    x.set(d.x.subarray(r * d.inputSize, (r + 1) * d.inputSize), i * d.inputSize);
    y.set(d.y.subarray(r * per, (r + 1) * per), i * per);
  }
  return { x, y, n };
}
