import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPreset, resolveBackend, tfjsSignature } from '@flotilla/model';
import { tfjsIO } from '../../server/src/serving/model-io.js';
import { forwardKind, predictPacked } from '../../server/src/serving/tfjs-predict.js';

/**
 * Serving's tfjs forward pass (server/src/serving/tfjs-predict.ts) against model.predict: the
 * same values, bit for bit, for Sequential models it runs layer by layer and for models it runs
 * through model.execute; no tensor left behind.
 */
function inputOf(rows: number, width: number): Float32Array {
  return new Float32Array(rows * width).map((_, i) => ((i * 7919) % 1000) / 1000);
}

function reference(model: tf.LayersModel, x: Float32Array, shape: number[]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(x, shape, 'float32')) as tf.Tensor).dataSync() as Float32Array);
}

describe('predictPacked', () => {
  beforeAll(async () => {
    await resolveBackend('node');
  });

  for (const preset of ['mnist-mlp', 'mnist-cnn'] as const) {
    it(`runs the ${preset} layer by layer with exactly predict's values at 1, 5 and 33 rows`, () => {
      const { model } = buildPreset(preset);
      const io = tfjsIO(tfjsSignature(model));
      expect(forwardKind(model, io)).toBe('chain');
      const before = tf.memory().numTensors;
      for (const rows of [1, 5, 33]) {
        const x = inputOf(rows, io.rowWidth);
        const got = predictPacked(model, io, x, rows);
        expect(got.length).toBe(rows * io.outWidth);
        expect(Array.from(got)).toEqual(Array.from(reference(model, x, [rows, ...io.inputs[0].shape])));
      }
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });
  }

  it('runs a functional model through model.execute with predict values', () => {
    const input = tf.input({ shape: [6], name: 'x' });
    const h = tf.layers.dense({ units: 5, activation: 'tanh', name: 'h' }).apply(input) as tf.SymbolicTensor;
    const skip = tf.layers.concatenate({ name: 'cat' }).apply([input, h]) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'out' }).apply(skip) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    const io = tfjsIO(tfjsSignature(model));
    expect(forwardKind(model, io)).toBe('execute');
    const x = inputOf(4, 6);
    expect(Array.from(predictPacked(model, io, x, 4))).toEqual(Array.from(reference(model, x, [4, 6])));
    model.dispose();
  });

  it('keeps model.execute for a Sequential model with a layer outside the chain list', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 8, name: 'd' }), tf.layers.batchNormalization({ name: 'bn' }), tf.layers.dense({ units: 2, name: 'o' })] });
    const io = tfjsIO(tfjsSignature(model));
    expect(forwardKind(model, io)).toBe('execute');
    const x = inputOf(3, 4);
    expect(Array.from(predictPacked(model, io, x, 3))).toEqual(Array.from(reference(model, x, [3, 4])));
    model.dispose();
  });
});
