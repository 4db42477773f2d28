import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveBackend } from '@flotilla/model';
import { checkModelDir } from '../../server/src/cli/model-upload.js';
import { saveModelDir, tarBytes } from '../helpers/model-dir.js';
import { ADMIN, expectClose, inferBinaryAIds, servingApp, type ServingHarness } from './serving-helpers.js';

/**
 * A tfjs functional model with two named inputs (FP32 `a` [2], INT32 `ids` [1]) and two outputs,
 * built here with fixed weights:
 *   c      = concat(a, E[ids])          E = the 4x2 embedding below
 *   logits = c W1 + b1                   (3 values)
 *   total  = c W2 + b2                   (1 value)
 * so every answer can be computed by hand.
 */
const E = [
  [0, 0],
  [1, 2],
  [-1, 0.5],
  [3, -3],
];
const W1 = [
  [1, 0, -1],
  [0, 2, 1],
  [0.5, 0.5, 0],
  [-1, 1, 2],
];
const B1 = [0.1, -0.2, 0.3];
const W2 = [[1], [1], [1], [1]];
const B2 = [0.5];

function build(): tf.LayersModel {
  const a = tf.input({ shape: [2], name: 'a' });
  const ids = tf.input({ shape: [1], name: 'ids', dtype: 'int32' });
  const emb = tf.layers.embedding({ inputDim: 4, outputDim: 2, name: 'emb', weights: [tf.tensor2d(E)] }).apply(ids) as tf.SymbolicTensor;
  const c = tf.layers.concatenate({ name: 'concat' }).apply([a, tf.layers.flatten({ name: 'flat' }).apply(emb) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 3, name: 'logits', weights: [tf.tensor2d(W1), tf.tensor1d(B1)] }).apply(c) as tf.SymbolicTensor;
  const total = tf.layers.dense({ units: 1, name: 'total', weights: [tf.tensor2d(W2), tf.tensor1d(B2)] }).apply(c) as tf.SymbolicTensor;
  return tf.model({ inputs: [a, ids], outputs: [logits, total], name: 'two_by_two' });
}

/** By hand: [logits (3), total (1)] of one example. */
function byHand(a: number[], id: number): { logits: number[]; total: number[] } {
  const c = [...a, ...E[id]];
  const dot = (w: number[][], b: number[]) => b.map((bj, j) => c.reduce((s, ci, i) => s + ci * w[i][j], bj));
  return { logits: dot(W1, B1), total: dot(W2, B2) };
}

const A = [
  [1, 2],
  [-0.5, 0.25],
  [3, -1],
];
const IDS = [1, 3, 2];
const WANT = A.map((a, i) => byHand(a, IDS[i]));

describe('tfjs models with several inputs and outputs', () => {
  let h: ServingHarness;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-multi-'));
  const post = (url: string, json: unknown) => h.call({ method: 'POST', url, json });
  const upload = async (model: string, d: string) =>
    h.app.inject({ method: 'POST', url: `/api/v1/models/${model}/versions`, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-tar' }, payload: await tarBytes(d) });

  beforeAll(async () => {
    await resolveBackend('node');
    h = await servingApp();
    const m = build();
    // The hand computation is what tfjs computes (a check of the test itself).
    const direct = m.predict([tf.tensor2d(A), tf.tensor2d(IDS.map((i) => [i]), undefined, 'int32')]) as tf.Tensor[];
    expectClose(Array.from(direct[0].dataSync()), WANT.flatMap((w) => w.logits));
    expectClose(Array.from(direct[1].dataSync()), WANT.flatMap((w) => w.total));
    await saveModelDir(m, dir);
    m.dispose();
  }, 60_000);
  afterAll(async () => {
    await h.app.close();
  });

  it('uploads with its signature read from the model; a task cannot train it', async () => {
    const res = await upload('multi', dir);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().signature).toEqual({
      inputs: [
        { name: 'a', dtype: 'float32', shape: [-1, 2] },
        { name: 'ids', dtype: 'int32', shape: [-1, 1] },
      ],
      outputs: [
        { name: 'logits', dtype: 'float32', shape: [-1, 3] },
        { name: 'total', dtype: 'float32', shape: [-1, 1] },
      ],
    });
    expect((await upload('multi', dir)).statusCode).toBe(201); // version 2, for deployments below
    const v = (await h.call({ method: 'GET', url: '/api/v1/models/multi/versions/1' })).json;
    expect(v.spec.signature.inputs.map((t: { name: string }) => t.name)).toEqual(['a', 'ids']);
    const task = await h.call({ method: 'POST', url: '/api/v1/tasks', json: { id: 'multi-ft', fromVersion: 'multi@1', plan: { clientsPerRound: 1 } } });
    expect(task.status).toBe(400);
    expect(task.json.error).toMatchObject({ code: 'FL_ERR_MODEL_IMPORT_TOPOLOGY' });
    expect(task.json.error.details.why).toMatch(/one input and one output train here/);
    // The CLI's local checks agree: `models import` takes it, `tasks create --model` does not.
    await expect(checkModelDir(dir, undefined, 'serve')).resolves.toBeUndefined();
    await expect(checkModelDir(dir, { clientsPerRound: 1 })).rejects.toMatchObject({ code: 'FL_ERR_MODEL_IMPORT_TOPOLOGY' });
  });

  it('describes both inputs and outputs in the OIP and TF Serving metadata', async () => {
    const meta = (await h.call({ method: 'GET', url: '/v2/models/multi/versions/1' })).json;
    expect(meta).toMatchObject({ platform: 'tensorflowjs' });
    expect(meta.inputs).toEqual([
      { name: 'a', datatype: 'FP32', shape: [-1, 2] },
      { name: 'ids', datatype: 'INT32', shape: [-1, 1] },
    ]);
    expect(meta.outputs).toEqual([
      { name: 'logits', datatype: 'FP32', shape: [-1, 3] },
      { name: 'total', datatype: 'FP32', shape: [-1, 1] },
    ]);
    const sig = (await h.call({ method: 'GET', url: '/v1/models/multi/versions/1/metadata' })).json.metadata.signature_def.signature_def.serving_default;
    expect(Object.keys(sig.inputs)).toEqual(['a', 'ids']);
    expect(sig.inputs.ids.dtype).toBe('DT_INT32');
    expect(sig.outputs.logits.tensor_shape.dim.map((d: { size: string }) => d.size)).toEqual(['-1', '3']);
  });

  it('answers OIP JSON (inputs in any order, outputs chosen) with the hand-computed values', async () => {
    const res = await post('/v2/models/multi/versions/1/infer', {
      inputs: [
        { name: 'ids', shape: [3, 1], datatype: 'INT32', data: IDS },
        { name: 'a', shape: [3, 2], datatype: 'FP32', data: A },
      ],
    });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape])).toEqual([
      ['logits', [3, 3]],
      ['total', [3, 1]],
    ]);
    expectClose(res.json.outputs[0].data, WANT.flatMap((w) => w.logits));
    expectClose(res.json.outputs[1].data, WANT.flatMap((w) => w.total));
    const one = await post('/v2/models/multi/versions/1/infer', { inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] }, { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [1] }], outputs: [{ name: 'total' }] });
    expect(one.json.outputs.map((o: { name: string }) => o.name)).toEqual(['total']);
    expectClose(one.json.outputs[0].data, WANT[0].total);
  });

  it('answers OIP binary tensors (FP32 and INT64 in, FP32 out)', async () => {
    const res = await inferBinaryAIds(h, '/v2/models/multi/versions/1/infer', A.flat(), IDS);
    expect(res.status).toBe(200);
    expect(res.sizes).toEqual([
      ['logits', 36],
      ['total', 12],
    ]);
    expectClose(res.floats, [...WANT.flatMap((w) => w.logits), ...WANT.flatMap((w) => w.total)]);
  });

  it('answers TF Serving row and columnar bodies', async () => {
    const rows = await post('/v1/models/multi/versions/1:predict', { instances: A.map((a, i) => ({ a, ids: [IDS[i]] })) });
    expect(rows.status, JSON.stringify(rows.json)).toBe(200);
    expect(rows.json.predictions).toHaveLength(3);
    rows.json.predictions.forEach((p: { logits: number[]; total: number[] }, i: number) => {
      expect(Object.keys(p)).toEqual(['logits', 'total']);
      expectClose(p.logits, WANT[i].logits);
      expectClose(p.total, WANT[i].total);
    });
    const cols = await post('/v1/models/multi/versions/1:predict', { inputs: { a: A, ids: IDS.map((i) => [i]) } });
    expect(cols.status).toBe(200);
    expectClose(cols.json.outputs.logits.flat(), WANT.flatMap((w) => w.logits));
    expectClose(cols.json.outputs.total.flat(), WANT.flatMap((w) => w.total));
  });

  it('refuses missing, extra, mis-shaped and mis-typed inputs with FL_ERR_SERVING_BAD_INPUT, and keeps serving', async () => {
    const a1 = { name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] };
    const ids1 = { name: 'ids', shape: [1, 1], datatype: 'INT32', data: [1] };
    const cases: Array<[unknown, string]> = [
      [{ inputs: [a1] }, 'the model takes 2 inputs'],
      [{ inputs: [a1, ids1, { name: 'c', shape: [1, 1], datatype: 'FP32', data: [0] }] }, 'the model takes 2 inputs'],
      [{ inputs: [a1, { ...ids1, name: 'idz' }] }, 'unknown input name'],
      [{ inputs: [{ ...a1, shape: [1, 3], data: [1, 2, 3] }, ids1] }, 'input shape does not match the model'],
      [{ inputs: [{ ...a1, shape: [2, 2], data: [1, 2, 3, 4] }, ids1] }, 'inputs differ in their batch dimension'],
      [{ inputs: [a1, { ...ids1, datatype: 'FP32', data: [0.5] }] }, 'the model takes INT32 here: integers of magnitude at most 2^24'],
      [{ inputs: [a1, ids1], outputs: [{ name: 'nope' }] }, 'unknown output name'],
    ];
    for (const [body, why] of cases) {
      const r = await post('/v2/models/multi/versions/1/infer', body);
      expect(r.status, why).toBe(400);
      expect(r.json).toMatchObject({ code: 'FL_ERR_SERVING_BAD_INPUT', details: { why } });
    }
    const tfs = await post('/v1/models/multi/versions/1:predict', { instances: [[1, 2]] });
    expect(tfs.status).toBe(400);
    expect(tfs.json.details.why).toBe('the model takes several inputs: name each');
    const missing = await post('/v1/models/multi/versions/1:predict', { instances: [{ a: [1, 2] }] });
    expect(missing.json.details).toMatchObject({ why: 'unknown input name', expected: ['a', 'ids'], got: ['a'] });
    const ok = await post('/v2/models/multi/versions/1/infer', { inputs: [a1, ids1] });
    expect(ok.status).toBe(200);
  });

  it('runs through deployments (split with worker-thread instances, bandit, shadow), batched, with stats', async () => {
    const batching = { maxBatchSize: 8, maxQueueDelayMs: 5, maxQueueSize: 1024, timeoutMs: 60000, delay: 'fixed', instances: 2 };
    const split = await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'multi-ab', model: 'multi', routing: { mode: 'split', targets: [{ ref: '1', weight: 1 }, { ref: '2', weight: 1 }] }, batching } });
    expect(split.status, JSON.stringify(split.json)).toBe(201);
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        post('/v2/models/multi-ab/infer', { id: `m-${i}`, inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: A[i % 3] }, { name: 'ids', shape: [1, 1], datatype: 'INT32', data: [IDS[i % 3]] }] }),
      ),
    );
    const versions = new Set<string>();
    answers.forEach((r, i) => {
      expect(r.status).toBe(200);
      versions.add(r.json.model_version);
      expectClose(r.json.outputs[0].data, WANT[i % 3].logits);
      expectClose(r.json.outputs[1].data, WANT[i % 3].total);
    });
    expect([...versions].sort()).toEqual(['1', '2']);
    const served = (await h.call({ method: 'GET', url: '/api/v1/serving' })).json.models.filter((m: { model: string }) => m.model === 'multi');
    expect(served).toHaveLength(2);
    for (const m of served) expect(m).toMatchObject({ format: 'tfjs', instances: { size: 2 }, io: { rowWidth: 3, outWidth: 4 } });
    expect(served.reduce((n: number, m: { batcher: { batches: number } }) => n + m.batcher.batches, 0)).toBeLessThan(24 + 2);
    const stats = (await h.call({ method: 'GET', url: '/api/v1/deployments/multi-ab/stats' })).json;
    expect(JSON.stringify(stats)).toContain('"requests":24');

    const bandit = await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'multi-bandit', model: 'multi', routing: { mode: 'bandit', algorithm: 'thompson', targets: [{ ref: '1' }, { ref: '2' }] } } });
    expect(bandit.status).toBe(201);
    const b = await post('/v2/models/multi-bandit/infer', { id: 'b-1', inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: A[0] }, { name: 'ids', shape: [1, 1], datatype: 'INT32', data: [IDS[0]] }] });
    expect(b.status).toBe(200);
    expect((await h.call({ method: 'POST', url: '/api/v1/deployments/multi-bandit/feedback', json: { requestId: 'b-1', reward: 1 } })).status).toBe(200);

    const shadow = await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'multi-shadow', model: 'multi', routing: { mode: 'shadow', primary: { ref: '1' }, shadow: { ref: '2' }, percent: 100 } } });
    expect(shadow.status).toBe(201);
    for (let i = 0; i < 5; i++) {
      const r = await post('/v2/models/multi-shadow/infer', { id: `s-${i}`, inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: A[1] }, { name: 'ids', shape: [1, 1], datatype: 'INT32', data: [IDS[1]] }] });
      expect(r.status).toBe(200);
      expect(r.json.model_version).toBe('1');
    }
    // The two versions hold the same weights: the shadow agrees on every mirrored row.
    let s: any;
    for (let i = 0; i < 100; i++) {
      s = (await h.call({ method: 'GET', url: '/api/v1/deployments/multi-shadow/stats' })).json;
      if (JSON.stringify(s).includes('"completed":5')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(JSON.stringify(s)).toContain('"completed":5');
    expect(JSON.stringify(s)).toMatch(/"agreement":1[,}]/);
  }, 180_000);
});
