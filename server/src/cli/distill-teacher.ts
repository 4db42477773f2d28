import { readOnnx, modelFromSpec, setFlatWeights } from '@flotilla/model';
import { AppError, type ModelSpec } from '@flotilla/protocol';
import { teacherShape } from '../registry/model-format.js';
import { onnxIO } from '../serving/model-io.js';
import type { ModelRunner } from '../serving/model-runner.js';
import { OnnxRunner } from '../serving/onnx-runner.js';
import { loadOnnxRuntime } from '../serving/onnx-runtime.js';
import { TfjsRunner } from '../serving/tfjs-runner.js';
import type { VersionRecord } from '../store/records.js';
import { asApiError, type ApiClient } from './api-client.js';

/**
 * A registry version loaded here as a distillation teacher, computing through the same
 * ModelRunner as serving (serving/model-runner.ts): a tfjs version in a TfjsRunner on this
 * process's tfjs backend, an ONNX version in an OnnxRunner (onnxruntime-node; without it,
 * FL_ERR_SERVING_ONNX_RUNTIME_MISSING before anything is downloaded). One input, one output of
 * `numClasses` values per row (registry/model-format.ts teacherShape).
 */
export interface Teacher {
  format: 'tfjs' | 'onnx';
  runner: ModelRunner;
  inputShape: number[];
  numClasses: number;
  inputName: string;
  outputName: string;
  parameters: number;
  /** Resident size: float32 weights (tfjs) or the model file (ONNX). */
  bytes: number;
}

export async function loadTeacher(api: ApiClient, record: VersionRecord, onnxRuntime = 'onnxruntime-node'): Promise<Teacher> {
  const base = `/api/v1/models/${encodeURIComponent(record.model)}/versions/${record.version}`;
  try {
    const { inputShape, numClasses } = teacherShape(record);
    if (record.onnx) {
      const ort = await loadOnnxRuntime(onnxRuntime);
      const bytes = await api.bytes(`${base}/artifacts/model.onnx`);
      const runner = new OnnxRunner(ort, bytes, onnxIO(record));
      await runner.start();
      const io = runner.io;
      return { format: 'onnx', runner, inputShape, numClasses, inputName: io.inputName, outputName: io.outputName, parameters: readOnnx(bytes).parameters, bytes: bytes.byteLength };
    }
    const spec = record.spec as ModelSpec;
    const raw = await api.bytes(`${base}/weights.bin`);
    if (raw.byteLength % 4 !== 0) throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'weights.bin is not float32' });
    const weights = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4).slice();
    const model = await modelFromSpec(spec);
    setFlatWeights(model, weights, spec.manifest);
    const runner = new TfjsRunner(model, spec, weights);
    const parameters = model.countParams();
    return { format: 'tfjs', runner, inputShape, numClasses, inputName: runner.io.inputName, outputName: runner.io.outputName, parameters, bytes: parameters * 4 };
  } catch (err) {
    throw asApiError(err);
  }
}

/**
 * A teacher's output rows as logits: rows that are probability distributions (every value >= 0,
 * each row summing to 1 within 1e-3: a softmax output) become their logarithms, equal to the
 * logits up to a per-row constant, which softmax ignores; anything else is taken as logits.
 */
export function asLogits(out: Float32Array, k: number): Float32Array {
  let probabilities = true;
  for (let r = 0; r < out.length / k && probabilities; r++) {
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const p = out[r * k + j];
      if (!(p >= 0)) probabilities = false;
      sum += p;
    }
    if (Math.abs(sum - 1) > 1e-3) probabilities = false;
  }
  return probabilities ? out.map((p) => Math.log(p + 1e-7)) : out;
}
