import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AppError, float32ToBytes, layersModelJson, type ModelSpec } from '@flotilla/protocol';
import { PRESETS, buildPreset, modelFromSpec, resolveBackend, setFlatWeights, specOf, type PresetName } from '@flotilla/model';
import { archiveDirectory } from '../registry/model-archive.js';
import { ApiClient, ApiError, UsageError } from './api-client.js';

/**
 * `flotilla models distill`: knowledge distillation (Hinton, Vinyals and Dean 2015, "Distilling
 * the Knowledge in a Neural Network") of a registry version into a smaller student, run here
 * with real tfjs. The student learns the teacher's soft labels at temperature T (loss
 * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), plus `alpha` times the cross-entropy on hard
 * labels when the data has them); the teacher's logits are recovered as log-probabilities of its
 * softmax output (equal up to a constant, which softmax ignores). The last `holdout` of the rows
 * is held out: teacher and student are measured on it in the same run (accuracy against the
 * labels, agreement with the teacher, parameter bytes, single-row and batch latency), and the
 * student is uploaded as the version's `distilled` variant with those figures.
 */
export interface DistillOptions {
  model: string;
  ref: string;
  /** A preset name or `mlp:H1,H2,...` (dense ReLU hidden layers, softmax output). */
  student: string;
  /** A CSV file: the teacher's input width of features per row, then optionally a class id. */
  data: string;
  temperature: number;
  epochs: number;
  batchSize: number;
  alpha: number;
  holdout: number;
  learningRate: number;
  progress: (done: number, total: number, note: string) => void;
}

export interface DistillReport {
  model: string;
  version: number;
  variant: 'distilled';
  trainRows: number;
  heldOutRows: number;
  teacher: Figures;
  student: Figures;
  /** What the registry recorded (prefixed `distilled_`). */
  metrics: Record<string, number>;
}
interface Figures {
  parameters: number;
  bytes: number;
  accuracy: number | null;
  agreement: number;
  latencyMs: { row: number; batch32: number };
}

const usage = (why: string) => new UsageError(why);

/** Rows of a CSV file: `width` features and, when present, a class id in one more column. */
export async function readDistillData(file: string, width: number, numClasses: number): Promise<{ x: Float32Array; y: Int32Array | null; n: number }> {
  const lines = (await readFile(file, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length && lines[0].split(',').some((c) => c.trim() !== '' && Number.isNaN(Number(c)))) lines.shift();
  const cols = lines[0]?.split(',').length ?? 0;
  if (cols !== width && cols !== width + 1) throw new ApiError(400, 'FL_ERR_DATA_BAD_SHAPE', `rows need ${width} feature columns (and optionally a class id): the first has ${cols}`);
  const labelled = cols === width + 1;
  const x = new Float32Array(lines.length * width);
  const y = labelled ? new Int32Array(lines.length) : null;
  lines.forEach((line, r) => {
    const cells = line.split(',').map(Number);
    if (cells.length !== cols || cells.some((v) => !Number.isFinite(v))) throw new ApiError(400, 'FL_ERR_DATA_BAD_SHAPE', `row ${r + 1} is not ${cols} numbers`);
    x.set(cells.slice(0, width), r * width);
    if (y) {
      const c = cells[width];
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new ApiError(400, 'FL_ERR_DATA_BAD_LABELS', `row ${r + 1}: class id ${c} outside 0..${numClasses - 1}`);
      y[r] = c;
    }
  });
  return { x, y, n: lines.length };
}

/** The student model, its input and output named as the teacher's so that one request fits both. */
export function buildStudent(student: string, teacher: tf.LayersModel, inputShape: number[], numClasses: number): tf.LayersModel {
  const inputName = teacher.inputNames[0];
  const outputName = teacher.outputNames[0];
  let hidden: number[];
  if ((PRESETS as readonly string[]).includes(student)) {
    const p = buildPreset(student as PresetName);
    const dense = p.model.layers.every((l) => l.getClassName() === 'Dense');
    const units = p.model.layers.map((l) => (l.getConfig() as { units?: number }).units ?? 0);
    const inShape = p.model.inputs[0].shape.slice(1);
    p.model.dispose();
    if (!dense || p.numClasses !== numClasses || JSON.stringify(inShape) !== JSON.stringify(inputShape)) {
      throw usage(`preset ${student} does not fit the teacher (input [${inputShape}], ${numClasses} classes); use --student mlp:H1,H2,...`);
    }
    hidden = units.slice(0, -1);
  } else {
    const m = /^mlp:([0-9]{1,5}(?:,[0-9]{1,5}){0,7})$/.exec(student);
    if (!m) throw usage(`--student must be a preset (${PRESETS.join(', ')}) or mlp:H1,H2,... (hidden units)`);
    hidden = m[1].split(',').map(Number);
    if (hidden.some((h) => h < 1)) throw usage('hidden layers need at least one unit');
  }
  const layers: tf.layers.Layer[] = [tf.layers.inputLayer({ inputShape, name: inputName })];
  if (inputShape.length > 1) layers.push(tf.layers.flatten({ name: 'student_flat' }));
  hidden.forEach((units, i) => layers.push(tf.layers.dense({ units, activation: 'relu', name: `student_hidden${i + 1}` })));
  layers.push(tf.layers.dense({ units: numClasses, activation: 'softmax', name: outputName }));
  return tf.sequential({ name: 'student', layers });
}

const softAt = (probs: tf.Tensor, t: number) => tf.softmax(tf.div(tf.log(tf.add(probs, 1e-7)), t));

function predictAll(m: tf.LayersModel, x: Float32Array, n: number, shape: number[]): Float32Array {
  return tf.tidy(() => (m.predict(tf.tensor(x, [n, ...shape])) as tf.Tensor).dataSync() as Float32Array);
}

function argmaxRows(p: Float32Array, k: number): Int32Array {
  const out = new Int32Array(p.length / k);
  for (let r = 0; r < out.length; r++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (p[r * k + j] > p[r * k + best]) best = j;
    out[r] = best;
  }
  return out;
}

/** Median wall time of `runs` predictions of `rows` rows. */
function latency(m: tf.LayersModel, x: Float32Array, rows: number, shape: number[], runs: number): number {
  const width = shape.reduce((a, b) => a * b, 1);
  const input = tf.tensor(x.subarray(0, rows * width), [rows, ...shape]);
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    tf.tidy(() => (m.predict(input) as tf.Tensor).dataSync());
    if (i >= 2) times.push(performance.now() - t0);
  }
  input.dispose();
  times.sort((a, b) => a - b);
  return Math.round(times[times.length >> 1] * 1000) / 1000;
}

export async function distill(api: ApiClient, o: DistillOptions): Promise<DistillReport> {
  if (!(o.temperature > 0)) throw usage('--temperature must be > 0');
  const record = await api.call('GET', `/api/v1/models/${encodeURIComponent(o.model)}/versions/${encodeURIComponent(o.ref)}`);
  if (!record.spec) throw new ApiError(409, 'FL_ERR_MODEL_FORMAT', 'only tfjs versions can be distilled here', { model: o.model, version: record.version, format: 'onnx' });
  const spec = record.spec as ModelSpec;
  const version = record.version as number;
  await resolveBackend('node');
  const wres = await fetchWeights(api, o.model, version);
  const teacher = await modelFromSpec(spec);
  setFlatWeights(teacher, wres, spec.manifest);
  const width = spec.inputShape.reduce((a, b) => a * b, 1);
  const k = spec.numClasses;
  const data = await readDistillData(o.data, width, k);
  const held = Math.max(1, Math.floor(data.n * o.holdout));
  const nTrain = data.n - held;
  if (nTrain < 1) throw new ApiError(400, 'FL_ERR_DATA_BAD_SHAPE', `too few rows (${data.n}) for a held-out fraction of ${o.holdout}`);
  const student = buildStudent(o.student, teacher, spec.inputShape, k);

  const xTrain = data.x.subarray(0, nTrain * width);
  const soft = tf.tidy(() => softAt(tf.tensor(predictAll(teacher, xTrain, nTrain, spec.inputShape), [nTrain, k]), o.temperature));
  const hard = data.y ? tf.oneHot(tf.tensor1d(data.y.subarray(0, nTrain), 'int32'), k) : null;
  const xs = tf.tensor(xTrain, [nTrain, ...spec.inputShape]);
  const optimizer = tf.train.adam(o.learningRate);
  const T = o.temperature;
  const steps = Math.ceil(nTrain / o.batchSize);
  let lastLoss = NaN;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = tf.util.createShuffledIndices(nTrain);
    for (let s = 0; s < steps; s++) {
      const idx = tf.tensor1d(Int32Array.from(order.subarray(s * o.batchSize, (s + 1) * o.batchSize)), 'int32');
      const loss = optimizer.minimize(() => {
        const q = student.apply(tf.gather(xs, idx), { training: true }) as tf.Tensor;
        const target = tf.gather(soft, idx);
        const qT = softAt(q, T);
        // T^2 * KL(target || qT), mean over the batch.
        const kl = tf.mean(tf.sum(tf.mul(target, tf.sub(tf.log(tf.add(target, 1e-7)), tf.log(tf.add(qT, 1e-7)))), 1));
        let total = tf.mul(kl, T * T) as tf.Scalar;
        if (hard && o.alpha > 0) total = tf.add(total, tf.mul(tf.losses.softmaxCrossEntropy(tf.gather(hard, idx), tf.log(tf.add(q, 1e-7))), o.alpha)) as tf.Scalar;
        return total;
      }, true);
      lastLoss = loss!.dataSync()[0];
      loss!.dispose();
      idx.dispose();
      o.progress(epoch * steps + s + 1, o.epochs * steps, `epoch ${epoch + 1}/${o.epochs} loss ${lastLoss.toFixed(4)}`);
    }
  }
  xs.dispose();
  soft.dispose();
  hard?.dispose();

  // Held-out figures, teacher and student in the same run.
  const xHeld = data.x.subarray(nTrain * width);
  const yHeld = data.y?.subarray(nTrain) ?? null;
  const tPred = argmaxRows(predictAll(teacher, xHeld, held, spec.inputShape), k);
  const sPred = argmaxRows(predictAll(student, xHeld, held, spec.inputShape), k);
  const acc = (p: Int32Array) => (yHeld ? p.reduce((a, c, i) => a + (c === yHeld[i] ? 1 : 0), 0) / held : null);
  const agreement = sPred.reduce((a, c, i) => a + (c === tPred[i] ? 1 : 0), 0) / held;
  const rows32 = Math.min(32, data.n);
  const figures = (m: tf.LayersModel, p: Int32Array, agree: number): Figures => {
    const parameters = m.countParams();
    return { parameters, bytes: parameters * 4, accuracy: acc(p), agreement: agree, latencyMs: { row: latency(m, data.x, 1, spec.inputShape, 30), batch32: latency(m, data.x, rows32, spec.inputShape, 15) } };
  };
  const tFig = figures(teacher, tPred, 1);
  const sFig = figures(student, sPred, agreement);
  const { spec: sSpec, weights: sWeights } = specOf(student, k);
  teacher.dispose();
  student.dispose();

  const metrics: Record<string, number> = {
    temperature: T,
    epochs: o.epochs,
    train_rows: nTrain,
    heldout_rows: held,
    final_loss: lastLoss,
    bytes: sFig.bytes,
    teacher_bytes: tFig.bytes,
    latency_row_ms: sFig.latencyMs.row,
    teacher_latency_row_ms: tFig.latencyMs.row,
    latency_batch32_ms: sFig.latencyMs.batch32,
    teacher_latency_batch32_ms: tFig.latencyMs.batch32,
    agreement,
  };
  if (sFig.accuracy !== null) metrics.accuracy = sFig.accuracy;
  if (tFig.accuracy !== null) metrics.teacher_accuracy = tFig.accuracy;
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-student-'));
  try {
    await writeFile(join(dir, 'model.json'), JSON.stringify(layersModelJson(sSpec, 'weights.bin')));
    await writeFile(join(dir, 'weights.bin'), float32ToBytes(sWeights));
    const archive = await archiveDirectory(dir);
    const q = new URLSearchParams({ metrics: JSON.stringify(metrics) });
    const stored = await api.call('POST', `/api/v1/models/${encodeURIComponent(o.model)}/versions/${version}/variants/distilled?${q}`, undefined, {
      contentType: 'application/x-tar',
      length: archive.size,
      chunks: archive.chunks(),
    });
    return { model: o.model, version, variant: 'distilled', trainRows: nTrain, heldOutRows: held, teacher: tFig, student: sFig, metrics: Object.fromEntries(Object.entries(stored.metrics as Record<string, number>).filter(([key]) => key.startsWith('distilled_'))) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fetchWeights(api: ApiClient, model: string, version: number): Promise<Float32Array> {
  const bytes = await api.bytes(`/api/v1/models/${encodeURIComponent(model)}/versions/${version}/weights.bin`);
  if (bytes.byteLength % 4 !== 0) throw new AppError('FL_ERR_CODEC_CORRUPT', { why: 'weights.bin is not float32' });
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
}
