import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOnnx } from '@flotilla/model';
import { loadOnnxRuntime } from '../../server/src/serving/onnx-runtime.js';
import { expectClose, inferBinaryAIds, servingApp, type ServingHarness } from './serving-helpers.js';

let ortPresent = true;
try {
  await loadOnnxRuntime();
} catch (err) {
  ortPresent = false;
  console.log(`skipping ONNX serving tests: onnxruntime-node cannot be loaded here (${(err as Error).message})`);
}

/** relu(x W + b) with W = [[1, -1, 0], [2, 0.5, 1]], b = [0, 1, -1]: inputs of 2 features, 3 outputs. */
const W = [
  [1, -1, 0],
  [2, 0.5, 1],
];
const B = [0, 1, -1];
const dense = (x: number[]) => B.map((b, j) => Math.max(0, x[0] * W[0][j] + x[1] * W[1][j] + b));
function denseOnnx(batchDim = -1): Uint8Array {
  return writeOnnx({
    inputs: [{ name: 'features', elemType: 1, shape: [batchDim, 2] }],
    outputs: [{ name: 'scores', elemType: 1, shape: [batchDim, 3] }],
    initializers: [
      { name: 'W', dims: [2, 3], data: Float32Array.from(W.flat()) },
      { name: 'B', dims: [3], data: Float32Array.from(B) },
    ],
    nodes: [
      { opType: 'Gemm', inputs: ['features', 'W', 'B'], outputs: ['pre'] },
      { opType: 'Relu', inputs: ['pre'], outputs: ['scores'] },
    ],
  });
}

/** Two inputs (FP32 `a` [-1,2], INT64 `ids` [-1,1]) and two outputs: sum = a + ids, scaled = 3 * sum. */
const multiOnnx = () =>
  writeOnnx({
    inputs: [
      { name: 'a', elemType: 1, shape: [-1, 2] },
      { name: 'ids', elemType: 7, shape: [-1, 1] },
    ],
    outputs: [
      { name: 'sum', elemType: 1, shape: [-1, 2] },
      { name: 'scaled', elemType: 1, shape: [-1, 2] },
    ],
    initializers: [{ name: 'three', dims: [1], data: Float32Array.of(3) }],
    nodes: [
      { opType: 'Cast', inputs: ['ids'], outputs: ['idsf'], attributes: { to: 1 } },
      { opType: 'Add', inputs: ['a', 'idsf'], outputs: ['sum'] },
      { opType: 'Mul', inputs: ['sum', 'three'], outputs: ['scaled'] },
    ],
  });

/**
 * What only ONNX has: upload checks, hand-built graphs (several inputs and outputs, INT64). The
 * routes, deployment types, statistics, instances and payload log every format shares are
 * checked for ONNX by the serving contract (format-contract.ts, formats.test.ts).
 */
describe.skipIf(!ortPresent)('ONNX models in the registry and serving', () => {
  let h: ServingHarness;
  const upload = (model: string, bytes: Uint8Array, type = 'application/onnx') =>
    h.app.inject({ method: 'POST', url: `/api/v1/models/${model}/versions?tags=exported`, headers: { authorization: `Bearer admin-token-for-serving-tests-0123`, 'content-type': type }, payload: Buffer.from(bytes) });
  const post = (url: string, json: unknown) => h.call({ method: 'POST', url, json });

  beforeAll(async () => {
    h = await servingApp();
  });
  afterAll(async () => {
    await h.app.close();
  });

  it('uploads over REST: validated, versioned, with its signature; tfjs artifacts answer 409', async () => {
    const res = await upload('dense', denseOnnx());
    expect(res.statusCode).toBe(201);
    const v = res.json();
    expect(v).toMatchObject({ model: 'dense', version: 1, format: 'onnx', tags: ['imported', 'onnx', 'exported'] });
    expect(v.onnx).toMatchObject({ opset: 13, irVersion: 8, inputs: [{ name: 'features', elemType: 'FLOAT', shape: [-1, 2] }], outputs: [{ name: 'scores', elemType: 'FLOAT', shape: [-1, 3] }], opTypes: ['Gemm', 'Relu'] });
    expect(v.artifacts[0]).toMatchObject({ name: 'model.onnx' });
    const meta = await h.call({ method: 'GET', url: '/api/v1/models/dense/versions/1' });
    expect(meta.json.onnx.opset).toBe(13);
    const art = await h.app.inject({ method: 'GET', url: '/api/v1/models/dense/versions/1/artifacts/model.onnx', headers: { authorization: 'Bearer admin-token-for-serving-tests-0123' } });
    expect(Buffer.compare(art.rawPayload, Buffer.from(denseOnnx()))).toBe(0);
    const mj = await h.call({ method: 'GET', url: '/api/v1/models/dense/versions/1/model.json' });
    expect(mj.status).toBe(409);
    expect(mj.json.error.code).toBe('FL_ERR_MODEL_FORMAT');
  });

  it('refuses models it cannot serve with 400 FL_ERR_MODEL_IMPORT_ONNX and stores nothing', async () => {
    const fixedBatch = await upload('dense', denseOnnx(4));
    expect(fixedBatch.statusCode).toBe(400);
    expect(fixedBatch.json().error).toMatchObject({ code: 'FL_ERR_MODEL_IMPORT_ONNX', details: { why: 'input needs a dynamic first (batch) dimension to be batched' } });
    const junk = await upload('dense', Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]));
    expect(junk.json().error.code).toBe('FL_ERR_MODEL_IMPORT_ONNX');
    const oldOpset = writeOnnx({ inputs: [{ name: 'x', elemType: 1, shape: [-1, 1] }], outputs: [{ name: 'y', elemType: 1, shape: [-1, 1] }], nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }], opset: 5 });
    expect((await upload('dense', oldOpset)).json().error.details).toMatchObject({ why: 'unsupported opset', opset: 5 });
    // Structurally fine but onnxruntime cannot run it (an operator that does not exist).
    const bogusOp = writeOnnx({ inputs: [{ name: 'x', elemType: 1, shape: [-1, 1] }], outputs: [{ name: 'y', elemType: 1, shape: [-1, 1] }], nodes: [{ opType: 'NoSuchOp', inputs: ['x'], outputs: ['y'] }] });
    const run = await upload('dense', bogusOp);
    expect(run.statusCode).toBe(400);
    expect(run.json().error.details.why).toMatch(/^onnxruntime could not run it/);
    expect((await upload('dense', denseOnnx(), 'application/json')).statusCode).toBe(400);
    const list = await h.call({ method: 'GET', url: '/api/v1/models/dense/versions' });
    expect(list.json.versions.map((x: { version: number }) => x.version)).toEqual([1]);
  });

  it('serves it over OIP: metadata, and outputs equal to the hand-computed ones', async () => {
    const meta = await h.call({ method: 'GET', url: '/v2/models/dense' });
    expect(meta.json).toMatchObject({ platform: 'onnxruntime', inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'scores', datatype: 'FP32', shape: [-1, 3] }] });
    const x = [
      [1, 2],
      [-3, 0.5],
      [0, 0],
    ];
    const res = await post('/v2/models/dense/infer', { inputs: [{ name: 'features', shape: [3, 2], datatype: 'FP32', data: x.flat() }] });
    expect(res.status).toBe(200);
    expect(res.json.outputs[0]).toMatchObject({ name: 'scores', shape: [3, 3], datatype: 'FP32' });
    expectClose(res.json.outputs[0].data, x.flatMap(dense));
    expect(x.flatMap(dense)).toEqual([5, 1, 1, 0, 4.25, 0, 0, 1, 0]);
    const bad = await post('/v2/models/dense/infer', { inputs: [{ name: 'features', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('FL_ERR_SERVING_BAD_INPUT');
  });

  it('serves two inputs (FP32 and INT64) and two outputs over OIP (JSON and binary) and TF Serving', async () => {
    expect((await upload('multi', multiOnnx())).statusCode).toBe(201);
    const meta = (await h.call({ method: 'GET', url: '/v2/models/multi' })).json;
    expect(meta.inputs).toEqual([
      { name: 'a', datatype: 'FP32', shape: [-1, 2] },
      { name: 'ids', datatype: 'INT64', shape: [-1, 1] },
    ]);
    expect(meta.outputs.map((o: { name: string }) => o.name)).toEqual(['sum', 'scaled']);
    const a = [1, 2, 3, 4, 5, 6];
    const ids = [10, 20, 30];
    const sum = [11, 12, 23, 24, 35, 36];
    // Inputs in any order.
    const res = await post('/v2/models/multi/infer', {
      inputs: [
        { name: 'ids', shape: [3, 1], datatype: 'INT64', data: ids },
        { name: 'a', shape: [3, 2], datatype: 'FP32', data: a },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json.outputs).toEqual([
      { name: 'sum', datatype: 'FP32', shape: [3, 2], data: sum },
      { name: 'scaled', datatype: 'FP32', shape: [3, 2], data: sum.map((v) => v * 3) },
    ]);
    const one = await post('/v2/models/multi/infer', { inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 1] }, { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [2] }], outputs: [{ name: 'scaled' }] });
    expect(one.json.outputs).toEqual([{ name: 'scaled', datatype: 'FP32', shape: [1, 2], data: [9, 9] }]);
    const frac = await post('/v2/models/multi/infer', { inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 1] }, { name: 'ids', shape: [1, 1], datatype: 'FP32', data: [0.5] }] });
    expect(frac.json.code).toBe('FL_ERR_SERVING_BAD_INPUT');
    const ragged = await post('/v2/models/multi/infer', { inputs: [{ name: 'a', shape: [2, 2], datatype: 'FP32', data: [1, 1, 1, 1] }, { name: 'ids', shape: [1, 1], datatype: 'INT64', data: [2] }] });
    expect(ragged.json.details.why).toBe('inputs differ in their batch dimension');
    const missing = await post('/v2/models/multi/infer', { inputs: [{ name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 1] }] });
    expect(missing.json.details.why).toBe('the model takes 2 inputs');

    // Binary: INT64 ids and FP32 a as raw bytes (input order), both outputs as bytes.
    const bin = await inferBinaryAIds(h, '/v2/models/multi/infer', a, ids);
    expect(bin.status).toBe(200);
    expect(bin.sizes).toEqual([['sum', 24], ['scaled', 24]]);
    expect(bin.floats).toEqual([...sum, ...sum.map((v) => v * 3)]);

    // TF Serving: row format names every input per instance; several outputs answer one object per row.
    const rows = await post('/v1/models/multi:predict', { instances: [{ a: [1, 2], ids: [10] }, { a: [3, 4], ids: [20] }] });
    expect(rows.json.predictions).toEqual([
      { sum: [11, 12], scaled: [33, 36] },
      { sum: [23, 24], scaled: [69, 72] },
    ]);
    const cols = await post('/v1/models/multi:predict', { inputs: { a: [[1, 2]], ids: [[10]] } });
    expect(cols.json.outputs).toEqual({ sum: [[11, 12]], scaled: [[33, 36]] });
    expect((await post('/v1/models/multi:predict', { instances: [[1, 2]] })).status).toBe(400);
    const sig = (await h.call({ method: 'GET', url: '/v1/models/multi/metadata' })).json.metadata.signature_def.signature_def.serving_default;
    expect(sig.inputs.ids.dtype).toBe('DT_INT64');
    expect(Object.keys(sig.outputs)).toEqual(['sum', 'scaled']);
  });
});

describe('onnxruntime-node is optional', () => {
  it('a missing runtime is the coded error FL_ERR_SERVING_ONNX_RUNTIME_MISSING', async () => {
    await expect(loadOnnxRuntime('onnxruntime-node-not-installed')).rejects.toMatchObject({ code: 'FL_ERR_SERVING_ONNX_RUNTIME_MISSING' });
  });
});
