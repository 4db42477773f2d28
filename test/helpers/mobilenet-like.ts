import * as tf from '@tensorflow/tfjs';

/**
 * A MobileNet-like image classifier built in tests and benchmarks: a strided 3x3 stem, then
 * depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, ReLU) widening to `width` channels,
 * `deep` extra blocks at full width, global average pooling and a dense softmax `head`. Inputs are
 * tiny (8x8x3), so a forward pass is cheap on the cpu and wasm backends; the pointwise layers carry
 * the bulk of the parameters (width 1024, deep 5: about 5.9 M parameters, 23.6 MB).
 */
export function mobilenetLike(opts: { width?: number; deep?: number; classes?: number } = {}): tf.LayersModel {
  const width = opts.width ?? 1024;
  const classes = opts.classes ?? 10;
  const layers: tf.layers.Layer[] = [tf.layers.conv2d({ name: 'stem', inputShape: [8, 8, 3], filters: 32, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' })];
  let block = 0;
  const sep = (filters: number, strides: number) => {
    block++;
    // He initialisation and unit depthwise kernels keep activations from vanishing through ~20
    // ReLU layers (MobileNet uses batch normalisation for that).
    layers.push(tf.layers.depthwiseConv2d({ name: `dw${block}`, kernelSize: 3, strides, padding: 'same', activation: 'relu', depthwiseInitializer: 'ones' }));
    layers.push(tf.layers.conv2d({ name: `pw${block}`, filters, kernelSize: 1, activation: 'relu', kernelInitializer: 'heNormal' }));
  };
  sep(64, 1);
  sep(128, 2);
  sep(256, 1);
  sep(512, 2);
  sep(width, 1);
  for (let i = 0; i < (opts.deep ?? 5); i++) sep(width, 1);
  layers.push(tf.layers.globalAveragePooling2d({ name: 'pool' }));
  layers.push(tf.layers.dense({ name: 'head', units: classes, activation: 'softmax' }));
  return tf.sequential({ name: 'mobilenet_like', layers });
}
