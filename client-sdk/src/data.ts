/**
 * A device's local data. Rows live in `x` (row-major, `inputSize` floats per row) with integer
 * class labels in `y`; `indices` selects this device's rows, so many virtual devices can share one
 * dataset without copies. The SDK only reads these arrays.
 */
export interface Dataset {
  x: Float32Array;
  y: Uint8Array | Int32Array;
  inputSize: number;
  numClasses: number;
  indices?: Uint32Array;
}

/** Supplies local training data and, optionally, held-out evaluation data. Called once per round. */
export interface DataProvider {
  train(): Dataset | Promise<Dataset>;
  evaluate?(): Dataset | Promise<Dataset>;
}

export function datasetSize(d: Dataset): number {
  return d.indices ? d.indices.length : d.y.length;
}

/** Gather the selected rows into a dense feature matrix and a label vector. */
export function gatherRows(d: Dataset): { x: Float32Array; y: Int32Array; n: number } {
  const n = datasetSize(d);
  if (!d.indices) return { x: d.x.subarray(0, n * d.inputSize), y: Int32Array.from(d.y.subarray(0, n)), n };
  const x = new Float32Array(n * d.inputSize);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = d.indices[i];
    x.set(d.x.subarray(r * d.inputSize, (r + 1) * d.inputSize), i * d.inputSize);
    y[i] = d.y[r];
  }
  return { x, y, n };
}
