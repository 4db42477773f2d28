import type { ModelSpec } from '@flotilla/protocol';
import { buildManifest } from '@flotilla/protocol';

/**
 * A linear softmax classifier small enough to evaluate in plain JS: kernel [features, classes],
 * bias [classes]. Its test set is labelled by the reference weights, so those score accuracy 1
 * and damaged weights (quantised, pruned) score what the damage costs.
 */
export function linearModel(features: number, classes: number, seed = 42) {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  };
  const manifest = buildManifest([
    { name: 'dense/kernel', shape: [features, classes] },
    { name: 'dense/bias', shape: [classes] },
  ]);
  const topology = {
    class_name: 'Sequential',
    config: {
      name: 'linear',
      layers: [
        {
          class_name: 'Dense',
          config: { name: 'dense', units: classes, activation: 'softmax', use_bias: true, batch_input_shape: [null, features], dtype: 'float32' },
        },
      ],
    },
    keras_version: 'tfjs-layers 4.22.0',
    backend: 'tensor_flow.js',
  };
  const spec: ModelSpec = { topology, manifest, inputShape: [features], numClasses: classes };
  const weights = new Float32Array(features * classes + classes).map(() => rand());
  const xs = Array.from({ length: 400 }, () => Float32Array.from({ length: features }, () => rand() * 4));
  const logits = (w: Float32Array, x: Float32Array) =>
    Array.from({ length: classes }, (_, c) => {
      let z = w[features * classes + c];
      for (let f = 0; f < features; f++) z += x[f] * w[f * classes + c];
      return z;
    });
  const argmax = (z: number[]) => z.indexOf(Math.max(...z));
  const labels = xs.map((x) => argmax(logits(weights, x)));
  async function evaluate(w: Float32Array): Promise<{ accuracy: number; loss: number }> {
    let correct = 0;
    let loss = 0;
    xs.forEach((x, i) => {
      const z = logits(w, x);
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
      loss += lse - z[labels[i]];
      if (argmax(z) === labels[i]) correct++;
    });
    return { accuracy: correct / xs.length, loss: loss / xs.length };
  }
  return { spec, weights, xs, labels, evaluate };
}
