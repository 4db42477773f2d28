import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPreset, resolveBackend, setFlatWeights, specOf, writeOnnx, modelFromSpec } from '@flotilla/model';
import { runAdminCli } from '../../server/src/cli/admin-cli.js';
import { ADMIN, servingApp, type ServingHarness } from './serving-helpers.js';

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

  async function cli(args: string[]) {
    let stdout = '';
    let stderr = '';
    const code = await runAdminCli(args, { FLOTILLA_URL: url, FLOTILLA_TOKEN: ADMIN }, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    return { code, stdout, stderr };
  }

  it('trains a student on soft labels, records its figures beside the teacher\'s and serves it as a variant', async () => {
    const r = await cli(['models', 'distill', 'teach@latest', '--student', 'mlp:6', '--data', csv, '--temperature', '3', '--epochs', '30', '--batch-size', '32', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/distilling \[#{30}\] 100% epoch 30\/30 loss [0-9.]+\n$/);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ model: 'teach', version: 1, variant: 'distilled', trainRows: 720, heldOutRows: 180 });
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

    // Served as the variant: what tfjs computes with the student's stored spec and weights.
    const reg = h.app.flotilla.registry;
    const rec = await reg.getVersion('teach', 1);
    const sSpec = await reg.specOf(rec, 'distilled');
    const student = await modelFromSpec(sSpec);
    setFlatWeights(student, await reg.readWeights(rec, 'distilled'), sSpec.manifest);
    const input = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8];
    const want = Array.from((student.predict(tf.tensor2d([input])) as tf.Tensor).dataSync());
    const res = await h.call({ method: 'POST', url: '/v2/models/teach/versions/1/infer?variant=distilled', json: { inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: input }] } });
    expect(res.status).toBe(200);
    expect(res.headers['x-model-variant']).toBe('distilled');
    res.json.outputs[0].data.forEach((v: number, i: number) => expect(v).toBeCloseTo(want[i], 5));
    // An existing deployment type routes traffic to it: a split between teacher and student.
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

  it('refuses a second student, an ONNX teacher and bad flags, with codes', async () => {
    const again = await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', csv, '--epochs', '1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('FL_ERR_VERSION_IMMUTABLE');
    const onnx = writeOnnx({ inputs: [{ name: 'x', elemType: 1, shape: [-1, 8] }], outputs: [{ name: 'y', elemType: 1, shape: [-1, 8] }], nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }] });
    await h.app.inject({ method: 'POST', url: '/api/v1/models/onnx-teach/versions', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/onnx' }, payload: Buffer.from(onnx) });
    const fromOnnx = await cli(['models', 'distill', 'onnx-teach@1', '--student', 'mlp:4', '--data', csv]);
    expect(fromOnnx.code).toBe(1);
    expect(fromOnnx.stderr).toContain('FL_ERR_MODEL_FORMAT');
    expect((await cli(['models', 'distill', 'teach@1', '--student', 'resnet', '--data', csv])).code).toBe(2);
    expect((await cli(['models', 'distill', 'teach', '--student', 'mlp:4', '--data', csv])).code).toBe(2);
    expect((await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', csv, '--temperature', '0'])).code).toBe(2);
    const wrongWidth = join(dir, 'narrow.csv');
    writeFileSync(wrongWidth, '1,2,3\n4,5,6\n');
    const narrow = await cli(['models', 'distill', 'teach@1', '--student', 'mlp:4', '--data', wrongWidth]);
    expect(narrow.stderr).toContain('FL_ERR_DATA_BAD_SHAPE');
  }, 120_000);
});
