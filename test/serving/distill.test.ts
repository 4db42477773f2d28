import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPreset, resolveBackend, setFlatWeights, specOf, tfjsToOnnx, writeOnnx, modelFromSpec } from '@flotilla/model';
import { loadMnist } from '@flotilla/simulator';
import { runAdminCli } from '../../server/src/cli/admin-cli.js';
import { ApiClient } from '../../server/src/cli/api-client.js';
import { distill } from '../../server/src/cli/distill.js';
import { loadOnnxRuntime } from '../../server/src/serving/onnx-runtime.js';
import { ADMIN, servingApp, type ServingHarness } from './serving-helpers.js';

let ortPresent = true;
try {
  await loadOnnxRuntime();
} catch (err) {
  ortPresent = false;
  console.log(`skipping the ONNX-teacher distillation test: onnxruntime-node cannot be loaded here (${(err as Error).message})`);
}

/** The admin CLI against `url` with the admin token: exit code and what it printed. */
async function runCli(url: string, args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runAdminCli(args, { FLOTILLA_URL: url, FLOTILLA_TOKEN: ADMIN }, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/**
 * `flotilla models distill` against a real server on port 0: a teacher trained here with tfjs on
 * a 3-class problem, a smaller student trained on its soft labels by the CLI, stored as the
 * version's `distilled` variant with figures measured on held-out rows, then served.
 */
describe('flotilla models distill', () => {
  let h: ServingHarness;
  let url: string;
  let csv: string;
  const rows = 900;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-distill-'));

  beforeAll(async () => {
    await resolveBackend('node');
    h = await servingApp();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    // Data: class = argmax of three fixed linear scores of 8 features (separable, not trivial).
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const W = Array.from({ length: 3 }, () => Array.from({ length: 8 }, rand));
    const x = Array.from({ length: rows }, () => Array.from({ length: 8 }, rand));
    const y = x.map((r) => {
      const s = W.map((w) => w.reduce((a, wi, i) => a + wi * r[i], 0));
      return s.indexOf(Math.max(...s));
    });
    csv = join(dir, 'data.csv');
    writeFileSync(csv, ['f0,f1,f2,f3,f4,f5,f6,f7,label', ...x.map((r, i) => [...r.map((v) => v.toFixed(5)), y[i]].join(','))].join('\n'));
    // Teacher: tiny-mlp (8-16-3) trained on the first 700 rows.
    const preset = buildPreset('tiny-mlp');
    preset.model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
    await preset.model.fit(tf.tensor2d(x.slice(0, 700)), tf.oneHot(tf.tensor1d(y.slice(0, 700), 'int32'), 3), { epochs: 40, batchSize: 32, verbose: 0 });
    const { spec, weights } = specOf(preset.model, 3);
    preset.model.dispose();
    await h.app.flotilla.registry.publish({ model: 'teach', spec, weights });
  }, 120_000);
  afterAll(async () => {
    await h.app.close();
  });

  const cli = (args: string[]) => runCli(url, args);

  it('trains a student on soft labels, records its figures beside the teacher\'s and serves it as a variant', async () => {
    const r = await cli(['models', 'distill', 'teach@latest', '--student', 'mlp:6', '--data', csv, '--temperature', '3', '--epochs', '30', '--batch-size', '32', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/distilling \[#{30}\] 100% epoch 30\/30 loss [0-9.]+\n$/);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ model: 'teach', version: 1, variant: 'distilled', teacherFormat: 'tfjs', data: csv, trainRows: 720, heldOutRows: 180 });
    expect(report.student.parameters).toBe(8 * 6 + 6 + 6 * 3 + 3);
    expect(report.teacher.parameters).toBe(8 * 16 + 16 + 16 * 3 + 3);
    // The teacher learned the task; the student learned it from the teacher (far above chance: 1/3).
    expect(report.teacher.accuracy).toBeGreaterThan(0.8);
    expect(report.student.agreement).toBeGreaterThan(0.7);
    expect(report.student.accuracy).toBeGreaterThan(0.6);

    const v = (await h.call({ method: 'GET', url: '/api/v1/models/teach/versions/1' })).json;
    expect(v.metrics).toMatchObject({ distilled_temperature: 3, distilled_bytes: report.student.bytes, distilled_teacher_bytes: report.teacher.bytes, distilled_accuracy: report.student.accuracy, distilled_teacher_accuracy: report.teacher.accuracy, distilled_agreement: report.student.agreement });
    expect(v.metrics.distilled_latency_row_ms).toBeGreaterThan(0);
    expect(v.artifacts.map((a: { name: string }) => a.name)).toEqual(['weights', 'weights.float16', 'weights.int8', 'weights.pruned', 'weights.distilled', 'spec.distilled']);

    // Served as the variant: the serving contract (format-contract.ts) checks every route, deployment
    // type and statistic for a student; here a split mixes the teacher and its student.
    const input = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8];
    const dep = await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'teach-ab', model: 'teach', routing: { mode: 'split', targets: [{ ref: '1', weight: 1 }, { ref: '1', variant: 'distilled', weight: 1 }] } } });
    expect(dep.status).toBe(201);
    const variants = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const a = await h.call({ method: 'POST', url: '/v2/models/teach-ab/infer', json: { inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: input }] } });
      expect(a.status).toBe(200);
      variants.add(String(a.headers['x-model-variant'] ?? 'float32'));
    }
    expect([...variants].sort()).toEqual(['distilled', 'float32']);
    // The student's model.json loads on devices like any variant.
    const mj = await h.call({ method: 'GET', url: '/api/v1/models/teach/versions/1/model.json?variant=distilled' });
    expect(mj.json.modelTopology.config.name).toBe('student');
  }, 300_000);

  it('refuses a second student, a teacher with two inputs, unknown or unfitting data, and bad flags, with codes', async () => {
    const again = await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', csv, '--epochs', '1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('FL_ERR_VERSION_IMMUTABLE');
    const twoInputs = writeOnnx({
      inputs: [
        { name: 'x', elemType: 1, shape: [-1, 8] },
        { name: 'z', elemType: 1, shape: [-1, 8] },
      ],
      outputs: [{ name: 'y', elemType: 1, shape: [-1, 8] }],
      nodes: [{ opType: 'Add', inputs: ['x', 'z'], outputs: ['y'] }],
    });
    await h.app.inject({ method: 'POST', url: '/api/v1/models/onnx-two/versions', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/onnx' }, payload: Buffer.from(twoInputs) });
    const fromTwo = await cli(['models', 'distill', 'onnx-two@1', '--student', 'mlp:4', '--data', csv]);
    expect(fromTwo.code).toBe(1);
    expect(fromTwo.stderr).toContain('FL_ERR_MODEL_FORMAT');
    const unknownSet = await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', 'central:cifar']);
    expect(unknownSet.code).toBe(1);
    expect(unknownSet.stderr).toContain('FL_ERR_DATA_SET_UNAVAILABLE');
    // MNIST rows (784 features) do not fit an 8-feature teacher.
    const unfit = await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', 'central:mnist', '--rows', '10']);
    expect(unfit.code).toBe(1);
    expect(unfit.stderr).toContain('FL_ERR_DATA_BAD_SHAPE');
    expect((await cli(['models', 'distill', 'teach@1', '--student', 'resnet', '--data', csv])).code).toBe(2);
    expect((await cli(['models', 'distill', 'teach', '--student', 'mlp:4', '--data', csv])).code).toBe(2);
    expect((await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', csv, '--temperature', '0'])).code).toBe(2);
    expect((await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', csv, '--rows', '1.5'])).code).toBe(2);
    const wrongWidth = join(dir, 'narrow.csv');
    writeFileSync(wrongWidth, '1,2,3\n4,5,6\n');
    const narrow = await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', wrongWidth]);
    expect(narrow.stderr).toContain('FL_ERR_DATA_BAD_SHAPE');
    // Nothing was stored by the refusals.
    const two = (await h.call({ method: 'GET', url: '/api/v1/models/onnx-two/versions/1' })).json;
    expect(two.artifacts.map((a: { name: string }) => a.name)).toEqual(['model.onnx']);
  }, 120_000);
});

/**
 * An ONNX teacher distilled on a central data set: an MNIST MLP trained here with tfjs, exported
 * to ONNX and uploaded; `--data central:mnist` reads the MNIST test split (the simulator's central
 * test set). The teacher runs in onnxruntime through serving's model runner; its held-out accuracy
 * must equal what tfjs computes for the same model on the same rows.
 */
describe.skipIf(!ortPresent)('flotilla models distill with an ONNX teacher and a central data set', () => {
  let h: ServingHarness;
  let url: string;
  let teacher: tf.LayersModel;
  const cli = (args: string[]) => runCli(url, args);

  beforeAll(async () => {
    await resolveBackend('node');
    h = await servingApp();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    const { train } = loadMnist({ trainLimit: 3000, testLimit: 1 });
    teacher = tf.sequential({
      name: 'mnist_teacher',
      layers: [tf.layers.dense({ name: 'h1', inputShape: [784], units: 32, activation: 'relu' }), tf.layers.dense({ name: 'probs', units: 10, activation: 'softmax' })],
    });
    teacher.compile({ optimizer: tf.train.adam(0.005), loss: 'categoricalCrossentropy' });
    await teacher.fit(tf.tensor2d(train.x, [train.n, 784]), tf.oneHot(tf.tensor1d(Int32Array.from(train.y), 'int32'), 10), { epochs: 3, batchSize: 64, verbose: 0 });
    const up = await h.app.inject({ method: 'POST', url: '/api/v1/models/mnist-onnx/versions', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/onnx' }, payload: Buffer.from(tfjsToOnnx(teacher)) });
    expect(up.statusCode, up.body).toBe(201);
  }, 180_000);
  afterAll(async () => {
    teacher?.dispose();
    await h.app.close();
  });

  it('trains a student from the ONNX teacher on central:mnist, measures both on held-out rows, and serves it beside the teacher', async () => {
    const r = await cli(['models', 'distill', 'mnist-onnx@1', '--student', 'mlp:16', '--data', 'central:mnist', '--rows', '1500', '--temperature', '4', '--alpha', '0.5', '--epochs', '8', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ model: 'mnist-onnx', version: 1, teacherFormat: 'onnx', data: 'central:mnist', trainRows: 1200, heldOutRows: 300 });
    expect(report.teacher.parameters).toBe(784 * 32 + 32 + 32 * 10 + 10);
    expect(report.student.parameters).toBe(784 * 16 + 16 + 16 * 10 + 10);
    expect(report.teacher.latencyMs.row).toBeGreaterThan(0);
    // The held-out rows are the last 300 of the first 1500 MNIST test rows: tfjs's own accuracy there is the teacher's.
    const { test } = loadMnist({ trainLimit: 1, testLimit: 1500 });
    const probs = tf.tidy(() => (teacher.predict(tf.tensor2d(test.x.subarray(1200 * 784), [300, 784])) as tf.Tensor).argMax(1).dataSync());
    const tfjsAccuracy = Array.from(probs).filter((c, i) => c === test.y[1200 + i]).length / 300;
    expect(report.teacher.accuracy).toBeCloseTo(tfjsAccuracy, 2);
    expect(report.teacher.accuracy).toBeGreaterThan(0.7);
    expect(report.student.agreement).toBeGreaterThan(0.6);
    expect(report.student.accuracy).toBeGreaterThan(0.5);
    const v = (await h.call({ method: 'GET', url: '/api/v1/models/mnist-onnx/versions/1' })).json;
    expect(v.metrics).toMatchObject({ distilled_teacher_accuracy: report.teacher.accuracy, distilled_accuracy: report.student.accuracy, distilled_teacher_bytes: report.teacher.bytes });
    expect(v.artifacts.map((a: { name: string }) => a.name)).toEqual(['model.onnx', 'weights.distilled', 'spec.distilled']);

    // The student (tfjs) serves as the ONNX version's variant, under the teacher's tensor names.
    const reg = h.app.flotilla.registry;
    const rec = await reg.getVersion('mnist-onnx', 1);
    const sSpec = await reg.specOf(rec, 'distilled');
    const student = await modelFromSpec(sSpec);
    setFlatWeights(student, await reg.readWeights(rec, 'distilled'), sSpec.manifest);
    const image = Array.from(test.x.subarray(0, 784));
    const want = Array.from((student.predict(tf.tensor2d([image])) as tf.Tensor).dataSync());
    student.dispose();
    const body = { inputs: [{ name: 'h1_input', shape: [1, 784], datatype: 'FP32', data: image }] };
    const res = await h.call({ method: 'POST', url: '/v2/models/mnist-onnx/versions/1/infer?variant=distilled', json: body });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.outputs[0].name).toBe('probs');
    // Its metadata (?variant=) is the student's: tfjs, under the teacher's tensor names.
    const meta = (await h.call({ method: 'GET', url: '/v2/models/mnist-onnx/versions/1?variant=distilled' })).json;
    expect(meta).toMatchObject({ platform: 'tensorflowjs', inputs: [{ name: 'h1_input', shape: [-1, 784] }], outputs: [{ name: 'probs', shape: [-1, 10] }], parameters: { variant: 'distilled' } });
    expect((await h.call({ method: 'GET', url: '/v2/models/mnist-onnx/versions/1' })).json.platform).toBe('onnxruntime');
    res.json.outputs[0].data.forEach((x: number, i: number) => expect(x).toBeCloseTo(want[i], 5));
    const dep = await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'mnist-ab', model: 'mnist-onnx', routing: { mode: 'split', targets: [{ ref: '1', weight: 1 }, { ref: '1', variant: 'distilled', weight: 1 }] } } });
    expect(dep.status, JSON.stringify(dep.json)).toBe(201);
    const variants = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const a = await h.call({ method: 'POST', url: '/v2/models/mnist-ab/infer', json: body });
      expect(a.status).toBe(200);
      variants.add(String(a.headers['x-model-variant'] ?? 'float32'));
    }
    expect([...variants].sort()).toEqual(['distilled', 'float32']);
    const formats = (await h.call({ method: 'GET', url: '/api/v1/serving' })).json.models.map((m: { variant: string; format: string }) => `${m.variant}:${m.format}`).sort();
    expect(formats).toEqual(['distilled:tfjs', 'float32:onnx']);
  }, 300_000);

  it('without onnxruntime-node an ONNX teacher is FL_ERR_SERVING_ONNX_RUNTIME_MISSING, and nothing is stored', async () => {
    const up = await h.app.inject({ method: 'POST', url: '/api/v1/models/mnist-onnx/versions', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/onnx' }, payload: Buffer.from(tfjsToOnnx(teacher)) });
    const version = up.json().version;
    const run = distill(new ApiClient(url, ADMIN), {
      model: 'mnist-onnx', ref: String(version), student: 'mlp:4', data: 'central:mnist', rows: 100, temperature: 2, epochs: 1, batchSize: 32, alpha: 0, holdout: 0.2, learningRate: 0.01, progress: () => undefined,
      onnxRuntime: 'onnxruntime-node-not-installed',
    });
    await expect(run).rejects.toMatchObject({ code: 'FL_ERR_SERVING_ONNX_RUNTIME_MISSING', status: 503 });
    const v = (await h.call({ method: 'GET', url: `/api/v1/models/mnist-onnx/versions/${version}` })).json;
    expect(v.artifacts.map((a: { name: string }) => a.name)).toEqual(['model.onnx']);
  }, 60_000);
});
