import * as tf from '@tensorflow/tfjs';
import { packRows, unpackRows, type ModelIO } from './model-io.js';

/**
 * One forward pass of a tfjs LayersModel over `rows` packed rows (model-io.ts): split into one
 * tensor per input in the model's input order (INT32 inputs as int32 tensors), and every output
 * packed back as float32 rows, in one forward pass whatever the number of rows. Used on the main thread (tfjs-runner.ts) and in model instances
 * (instance-worker.ts), so both compute exactly the same way.
 */
export function predictPacked(model: tf.LayersModel, io: ModelIO, x: Float32Array, rows: number): Float32Array {
  return tf.tidy(() => {
    const parts = unpackRows(x, io.inputs, io.rowWidth, rows);
    const feeds = io.inputs.map((t, k) => (t.datatype === 'INT32' ? tf.tensor(Int32Array.from(parts[k]), [rows, ...t.shape], 'int32') : tf.tensor(parts[k], [rows, ...t.shape], 'float32')));
    // One pass over the whole batch: predict's default batchSize (32) would slice a larger batch
    // into passes of 32 rows and concatenate their outputs (copies and kernel calls per batch).
    const out = model.predict(feeds.length === 1 ? feeds[0] : feeds, { batchSize: Math.max(1, rows) });
    const blocks = (Array.isArray(out) ? out : [out]).map((o) => {
      const d = o.dataSync();
      return d instanceof Float32Array ? d : Float32Array.from(d);
    });
    return packRows(blocks, io.outputs, io.outWidth, rows);
  });
}
