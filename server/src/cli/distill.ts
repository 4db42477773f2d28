import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { float32ToBytes, layersModelJson } from '@flotilla/protocol';
import { PRESETS, buildPreset, resolveBackend, specOf, type PresetName } from '@flotilla/model';
import { archiveDirectory } from '../registry/model-archive.js';
import type { ModelRunner } from '../serving/model-runner.js';
import { TfjsRunner } from '../serving/tfjs-runner.js';
import type { VersionRecord } from '../store/records.js';
import { ApiClient, ApiError, UsageError } from './api-client.js';
import { readDistillData } from './distill-data.js';
import { asLogits, loadTeacher, type Teacher } from './distill-teacher.js';

/**
 * `flotilla models distill`: knowledge distillation (Hinton, Vinyals and Dean 2015, "Distilling
 * the Knowledge in a Neural Network") of a registry version into a smaller student, run here
 * with real tfjs. The teacher (a tfjs or ONNX version, distill-teacher.ts) computes through
 * serving's ModelRunner. The student learns the teacher's soft labels at temperature T (loss
 * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), plus `alpha` times the cross-entropy on hard
 * labels when the data has them); a teacher ending in softmax has its logits recovered as
 * log-probabilities (asLogits). The last `holdout` of the rows (a CSV file or a central set,
 * distill-data.ts) is held out: teacher and student are measured on it in the same run, both
 * through a ModelRunner (accuracy against the labels, agreement with the teacher, parameter
 * bytes, median latency of one row and of 32), and the student is uploaded as the version's
 * `distilled` variant with those figures.
 */
export interface DistillOptions {
  model: string;
  ref: string;
  /** A preset name or `mlp:H1,H2,...` (dense ReLU hidden layers, softmax output). */
  student: string;
  /** A CSV file (the teacher's input width of features per row, then optionally a class id) or `central:<name>` (distill-data.ts). */
  data: string;
  /** Keep only the first rows of the data (default: all). */
  rows?: number;
  /** Tests: the onnxruntime package to load for an ONNX teacher (default onnxruntime-node). */
  onnxRuntime?: string;
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
  teacherFormat: 'tfjs' | 'onnx';
  data: string;
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

/** The student model, its input and output named as the teacher's so that one request fits both. */
export function buildStudent(student: string, teacher: Pick<Teacher, 'inputName' | 'outputName' | 'inputShape' | 'numClasses'>): tf.LayersModel {
  const { inputName, outputName, inputShape, numClasses } = teacher;
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
  try {
    const layers: tf.layers.Layer[] = [tf.layers.inputLayer({ inputShape, name: inputName })];
    if (inputShape.length > 1) layers.push(tf.layers.flatten({ name: 'student_flat' }));
    hidden.forEach((units, i) => layers.push(tf.layers.dense({ units, activation: 'relu', name: `student_hidden${i + 1}` })));
    layers.push(tf.layers.dense({ units: numClasses, activation: 'softmax', name: outputName }));
    return tf.sequential({ name: 'student', layers });
  } catch (err) {
    throw new ApiError(409, 'FL_ERR_MODEL_FORMAT', `the student cannot take the teacher's tensor names (${inputName}, ${outputName}) in tfjs: ${(err as Error).message}`);
  }
}

const softAt = (logits: tf.Tensor, t: number) => tf.softmax(tf.div(logits, t));
const studentLogits = (probs: tf.Tensor) => tf.log(tf.add(probs, 1e-7));

/** Predictions of `n` rows through a runner, in chunks of at most 1024 rows. */
async function predictAll(r: ModelRunner, x: Float32Array, n: number): Promise<Float32Array> {
  const w = r.io.rowWidth;
  const out = new Float32Array(n * r.io.outWidth);
  for (let s = 0; s < n; s += 1024) {
    const rows = Math.min(1024, n - s);
    out.set(await r.run(x.subarray(s * w, (s + rows) * w), rows), s * r.io.outWidth);
  }
  return out;
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

/** Median wall time of `runs` predictions of `rows` rows through a runner (after two untimed ones). */
async function latency(r: ModelRunner, x: Float32Array, rows: number, runs: number): Promise<number> {
  const input = x.slice(0, rows * r.io.rowWidth);
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    await r.run(input, rows);
    if (i >= 2) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[times.length >> 1] * 1000) / 1000;
}

export async function distill(api: ApiClient, o: DistillOptions): Promise<DistillReport> {
  if (!(o.temperature > 0)) throw usage('--temperature must be > 0');
  const record = (await api.call('GET', `/api/v1/models/${encodeURIComponent(o.model)}/versions/${encodeURIComponent(o.ref)}`)) as VersionRecord;
  await resolveBackend('node');
  const teacher = await loadTeacher(api, record, o.onnxRuntime);
  try {
    return await distillFrom(api, record, teacher, o);
  } finally {
    teacher.runner.dispose();
  }
}

async function distillFrom(api: ApiClient, record: VersionRecord, teacher: Teacher, o: DistillOptions): Promise<DistillReport> {
  const version = record.version;
  const width = teacher.inputShape.reduce((a, b) => a * b, 1);
  const k = teacher.numClasses;
  const data = await readDistillData(o.data, width, k, o.rows);
  const held = Math.max(1, Math.floor(data.n * o.holdout));
  const nTrain = data.n - held;
  if (nTrain < 1) throw new ApiError(400, 'FL_ERR_DATA_BAD_SHAPE', `too few rows (${data.n}) for a held-out fraction of ${o.holdout}`);
  const model = buildStudent(o.student, teacher);

  const xTrain = data.x.subarray(0, nTrain * width);
  const teacherLogits = asLogits(await predictAll(teacher.runner, xTrain, nTrain), k);
  const soft = tf.tidy(() => softAt(tf.tensor(teacherLogits, [nTrain, k]), o.temperature));
  const hard = data.y ? tf.oneHot(tf.tensor1d(data.y.subarray(0, nTrain), 'int32'), k) : null;
  const xs = tf.tensor(xTrain, [nTrain, ...teacher.inputShape]);
  const optimizer = tf.train.adam(o.learningRate);
  const T = o.temperature;
  const steps = Math.ceil(nTrain / o.batchSize);
  let lastLoss = NaN;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = tf.util.createShuffledIndices(nTrain);
    for (let s = 0; s < steps; s++) {
      const idx = tf.tensor1d(Int32Array.from(order.subarray(s * o.batchSize, (s + 1) * o.batchSize)), 'int32');
      const loss = optimizer.minimize(() => {
        const q = model.apply(tf.gather(xs, idx), { training: true }) as tf.Tensor;
        const target = tf.gather(soft, idx);
        const qT = softAt(studentLogits(q), T);
        // T^2 * KL(target || qT), mean over the batch.
        const kl = tf.mean(tf.sum(tf.mul(target, tf.sub(tf.log(tf.add(target, 1e-7)), tf.log(tf.add(qT, 1e-7)))), 1));
        let total = tf.mul(kl, T * T) as tf.Scalar;
        if (hard && o.alpha > 0) total = tf.add(total, tf.mul(tf.losses.softmaxCrossEntropy(tf.gather(hard, idx), studentLogits(q)), o.alpha)) as tf.Scalar;
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
  optimizer.dispose();

  // Held-out figures, teacher and student in the same run, both through a ModelRunner.
  const { spec: sSpec, weights: sWeights } = specOf(model, k);
  const student = new TfjsRunner(model, sSpec, sWeights);
  const xHeld = data.x.subarray(nTrain * width);
  const yHeld = data.y?.subarray(nTrain) ?? null;
  const tPred = argmaxRows(await predictAll(teacher.runner, xHeld, held), k);
  const sPred = argmaxRows(await predictAll(student, xHeld, held), k);
  const acc = (p: Int32Array) => (yHeld ? p.reduce((a, c, i) => a + (c === yHeld[i] ? 1 : 0), 0) / held : null);
  const agreement = sPred.reduce((a, c, i) => a + (c === tPred[i] ? 1 : 0), 0) / held;
  const rows32 = Math.min(32, data.n);
  const figures = async (r: ModelRunner, parameters: number, bytes: number, p: Int32Array, agree: number): Promise<Figures> => ({
    parameters,
    bytes,
    accuracy: acc(p),
    agreement: agree,
    latencyMs: { row: await latency(r, xHeld, 1, 30), batch32: await latency(r, data.x, rows32, 15) },
  });
  const tFig = await figures(teacher.runner, teacher.parameters, teacher.bytes, tPred, 1);
  const sParams = model.countParams();
  const sFig = await figures(student, sParams, sParams * 4, sPred, agreement);
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
    return {
      model: o.model,
      version,
      variant: 'distilled',
      teacherFormat: teacher.format,
      data: data.source,
      trainRows: nTrain,
      heldOutRows: held,
      teacher: tFig,
      student: sFig,
      metrics: Object.fromEntries(Object.entries(stored.metrics as Record<string, number>).filter(([key]) => key.startsWith('distilled_'))),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
