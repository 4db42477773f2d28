import type * as tf from '@tensorflow/tfjs';
import { denseToOnnx, type DenseLayer } from './onnx-write.js';

/**
 * Export a tfjs model made only of Dense layers (the MLP presets, students of distillation) as
 * an ONNX model with the same input and output names, so that both formats of one model can be
 * served and compared. Throws for any other layer or activation.
 */
export function tfjsToOnnx(model: tf.LayersModel): Uint8Array {
  const layers: DenseLayer[] = model.layers.map((l) => {
    const cfg = l.getConfig() as { units?: number; activation?: string; useBias?: boolean };
    if (l.getClassName() !== 'Dense') throw new Error(`ONNX export handles Dense layers only, not ${l.getClassName()} (${l.name})`);
    const [kernel, bias] = l.getWeights();
    const [inputs, units] = kernel.shape as [number, number];
    const activation = (cfg.activation ?? 'linear') as DenseLayer['activation'];
    if (!['linear', 'relu', 'sigmoid', 'tanh', 'softmax'].includes(activation)) throw new Error(`ONNX export: activation ${activation} is not supported`);
    return { kernel: kernel.dataSync() as Float32Array, bias: bias ? (bias.dataSync() as Float32Array) : new Float32Array(units), inputs, units, activation };
  });
  if (layers.length === 0) throw new Error('ONNX export: the model has no layers');
  // A Sequential model built in this process has no inputNames yet; serving names them so once rebuilt from JSON.
  const input = model.inputNames[0] || `${model.layers[0].name}_input`;
  const output = model.outputNames[0] || model.layers[model.layers.length - 1].name;
  return denseToOnnx(layers, { input, output });
}
