import * as tf from '@tensorflow/tfjs';

/**
 * Built-in model presets. Layer names are fixed so that topologies and weight names are stable
 * across processes (tfjs would otherwise number them per process).
 */
export const PRESETS = ['mnist-mlp', 'mnist-cnn', 'tiny-mlp', 'wide-mlp'] as const;
export type PresetName = (typeof PRESETS)[number];

export interface PresetInfo {
  model: tf.LayersModel;
  numClasses: number;
}

/** McMahan et al. 2017 "2NN": 784-200-200-10 with ReLU. */
function mnistMlp(): tf.LayersModel {
  return tf.sequential({
    name: 'mnist_mlp',
    layers: [
      tf.layers.dense({ name: 'hidden1', inputShape: [784], units: 200, activation: 'relu' }),
      tf.layers.dense({ name: 'hidden2', units: 200, activation: 'relu' }),
      tf.layers.dense({ name: 'logits', units: 10, activation: 'softmax' }),
    ],
  });
}

/** McMahan et al. 2017 CNN: two 5x5 conv layers (32, 64) with 2x2 max pooling, 512 dense, softmax. */
function mnistCnn(): tf.LayersModel {
  return tf.sequential({
    name: 'mnist_cnn',
    layers: [
      tf.layers.reshape({ name: 'image', inputShape: [784], targetShape: [28, 28, 1] }),
      tf.layers.conv2d({ name: 'conv1', filters: 32, kernelSize: 5, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }),
      tf.layers.conv2d({ name: 'conv2', filters: 64, kernelSize: 5, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.dense({ name: 'fc', units: 512, activation: 'relu' }),
      tf.layers.dense({ name: 'logits', units: 10, activation: 'softmax' }),
    ],
  });
}

/** A small model for tests: inputs of 8 features, 3 classes. */
function tinyMlp(): tf.LayersModel {
  return tf.sequential({
    name: 'tiny_mlp',
    layers: [
      tf.layers.dense({ name: 'hidden', inputShape: [8], units: 16, activation: 'relu' }),
      tf.layers.dense({ name: 'logits', units: 3, activation: 'softmax' }),
    ],
  });
}

/** About one million parameters (784-1000-200-10), for scale and memory benchmarks. */
function wideMlp(): tf.LayersModel {
  return tf.sequential({
    name: 'wide_mlp',
    layers: [
      tf.layers.dense({ name: 'hidden1', inputShape: [784], units: 1000, activation: 'relu' }),
      tf.layers.dense({ name: 'hidden2', units: 200, activation: 'relu' }),
      tf.layers.dense({ name: 'logits', units: 10, activation: 'softmax' }),
    ],
  });
}

/** Build a preset with freshly (randomly) initialised weights. */
export function buildPreset(name: PresetName): PresetInfo {
  switch (name) {
    case 'mnist-mlp':
      return { model: mnistMlp(), numClasses: 10 };
    case 'mnist-cnn':
      return { model: mnistCnn(), numClasses: 10 };
    case 'tiny-mlp':
      return { model: tinyMlp(), numClasses: 3 };
    case 'wide-mlp':
      return { model: wideMlp(), numClasses: 10 };
  }
}
