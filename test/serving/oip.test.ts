import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, DEVICE, expectClose, referencePredict, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

describe('Open Inference Protocol (KServe V2) REST', () => {
  let h: ServingHarness;
  let published: Awaited<ReturnType<ServingHarness['publishTiny']>>;
  beforeAll(async () => {
    h = await servingApp();
    published = await h.publishTiny('tiny', 2);
  });
  afterAll(async () => {
    await h.app.close();
  });

  const infer = (path: string, body: unknown, token?: string | null) => h.call({ method: 'POST', url: path, json: body, token });
  const tensor = (rows: number[][], over: Record<string, unknown> = {}) => ({ name: 'hidden_input', shape: [rows.length, 8], datatype: 'FP32', data: rows.flat(), ...over });

  it('answers health, server metadata and model metadata', async () => {
    expect((await h.call({ method: 'GET', url: '/v2/health/live' })).json).toEqual({ live: true });
    expect((await h.call({ method: 'GET', url: '/v2/health/ready' })).status).toBe(200);
    expect((await h.call({ method: 'GET', url: '/v2' })).json).toMatchObject({ name: 'flotilla' });
    const meta = await h.call({ method: 'GET', url: '/v2/models/tiny' });
    expect(meta.status).toBe(200);
    expect(meta.json).toMatchObject({
      name: 'tiny',
      versions: ['2', '1'],
      platform: 'tensorflowjs',
      inputs: [{ name: 'hidden_input', datatype: 'FP32', shape: [-1, 8] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }],
    });
    expect(meta.json.parameters).toEqual({ model: 'tiny', routed: ['2'] });
    expect((await h.call({ method: 'GET', url: '/v2/models/tiny/versions/1' })).json.versions).toEqual(['1']);
    expect((await h.call({ method: 'GET', url: '/v2/models/tiny/ready' })).json).toEqual({ name: 'tiny', ready: true });
    expect((await h.call({ method: 'GET', url: '/v2/models/tiny/versions/1/ready' })).status).toBe(200);
  });

  it('infers latest with flat or nested data and answers what tfjs answers, naming the version', async () => {
    const rows = rowsOf(3);
    const want = await referencePredict(published.spec, published.weights[1], rows);
    const flat = await infer('/v2/models/tiny/infer', { id: 'req-1', inputs: [tensor(rows)] });
    expect(flat.status).toBe(200);
    expect(flat.json).toMatchObject({ model_name: 'tiny', model_version: '2', id: 'req-1' });
    expect(flat.headers['x-model-version']).toBe('2');
    expect(flat.json.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [3, 3] });
    expectClose(flat.json.outputs[0].data, want.flat());
    const nested = await infer('/v2/models/tiny/infer', { inputs: [tensor(rows, { data: rows })] });
    expectClose(nested.json.outputs[0].data, want.flat());
    expect(typeof nested.json.id).toBe('string');
  });

  it('serves an explicit version, an alias and a variant', async () => {
    const rows = rowsOf(2, 5);
    const v1 = await referencePredict(published.spec, published.weights[0], rows);
    const r1 = await infer('/v2/models/tiny/versions/1/infer', { inputs: [tensor(rows)] });
    expect(r1.json.model_version).toBe('1');
    expectClose(r1.json.outputs[0].data, v1.flat());
    await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 1 } });
    const alias = await infer('/v2/models/tiny/versions/production/infer', { inputs: [tensor(rows)] });
    expect(alias.json.model_version).toBe('1');
    const int8 = await infer('/v2/models/tiny/versions/1/infer?variant=int8', { inputs: [tensor(rows)] });
    expect(int8.status).toBe(200);
    expect(int8.headers['x-model-variant']).toBe('int8');
    expectClose(int8.json.outputs[0].data, v1.flat(), 0.05);
  });

  it('accepts INT32 data (and other numeric datatypes)', async () => {
    const rows = [[1, 0, -2, 3, 0, 1, 1, 0]];
    const want = await referencePredict(published.spec, published.weights[1], rows);
    const res = await infer('/v2/models/tiny/infer', { inputs: [tensor(rows, { datatype: 'INT32' })] });
    expect(res.status).toBe(200);
    expectClose(res.json.outputs[0].data, want.flat());
    expect((await infer('/v2/models/tiny/infer', { inputs: [tensor(rows, { datatype: 'FP64' })] })).status).toBe(200);
  });

  it('answers bad input with 400 FL_ERR_SERVING_BAD_INPUT in the OIP { error } form', async () => {
    const rows = rowsOf(2);
    const cases: Array<[string, unknown]> = [
      ['wrong feature count', { inputs: [tensor(rows, { shape: [2, 7] })] }],
      ['shape rank', { inputs: [tensor(rows, { shape: [16] })] }],
      ['data length', { inputs: [tensor(rows, { data: rows.flat().slice(1) })] }],
      ['ragged nested', { inputs: [tensor(rows, { data: [rows[0], rows[1].slice(1)] })] }],
      ['strings', { inputs: [tensor(rows, { data: rows.flat().map(String) })] }],
      ['null', { inputs: [tensor(rows, { data: [null, ...rows.flat().slice(1)] })] }],
      ['bool datatype', { inputs: [tensor(rows, { datatype: 'BOOL' })] }],
      ['bytes datatype', { inputs: [tensor(rows, { datatype: 'BYTES' })] }],
      ['int32 with fractions', { inputs: [tensor(rows, { datatype: 'INT32' })] }],
      ['uint8 out of range', { inputs: [tensor([[1, 2, 3, 4, 5, 6, 7, 300]], { datatype: 'UINT8' })] }],
      ['unknown input name', { inputs: [tensor(rows, { name: 'pixels' })] }],
      ['two inputs', { inputs: [tensor(rows), tensor(rows)] }],
      ['unknown output', { inputs: [tensor(rows)], outputs: [{ name: 'probabilities' }] }],
      ['no inputs', { inputs: [] }],
      ['inputs not a list', { inputs: 'x' }],
      ['zero rows', { inputs: [tensor([], { shape: [0, 8], data: [] })] }],
    ];
    for (const [what, body] of cases) {
      const res = await infer('/v2/models/tiny/infer', body);
      expect(res.status, what).toBe(400);
      expect(res.json.code, what).toBe('FL_ERR_SERVING_BAD_INPUT');
      expect(typeof res.json.error, what).toBe('string');
    }
    const invalidJson = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: '{"inputs": [', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } });
    expect(invalidJson.statusCode).toBe(400);
    expect(invalidJson.json().code).toBe('FL_ERR_SERVING_BAD_INPUT');
  });

  it('refuses finite values outside the declared float type (or float32, which models compute in) instead of answering Infinity', async () => {
    const row = (x: number) => [[x, 0, 0, 0, 0, 0, 0, 0]];
    const cases: Array<[string, number, number]> = [
      ['FP32', 1e39, 0],
      ['FP32', -1e39, 0],
      ['FP32', 3.4028235677973366e38, 0], // rounds to Infinity in float32
      ['FP64', 1e308, 0],
      ['FP64', -3.5e38, 0],
      ['FP16', 70000, 0],
    ];
    for (const [datatype, x] of cases) {
      const res = await infer('/v2/models/tiny/infer', { inputs: [tensor(row(x), { datatype })] });
      expect(res.status, `${datatype} ${x}`).toBe(400);
      expect(res.json.code).toBe('FL_ERR_SERVING_BAD_INPUT');
      expect(res.json.details).toMatchObject({ datatype, index: 0, value: x });
    }
    // TF Serving bodies are FP32 too, in both formats.
    for (const body of [{ instances: row(1e39) }, { inputs: row(-1e39) }]) {
      const res = await h.call({ method: 'POST', url: '/v1/models/tiny:predict', json: body });
      expect(res.status).toBe(400);
      expect(res.json.code ?? res.json.error?.code).toBe('FL_ERR_SERVING_BAD_INPUT');
    }
    // In range (float32's largest finite value, FP64's tiny values) still runs.
    for (const [datatype, x] of [['FP32', 3.4028234663852886e38], ['FP64', 1e-300], ['FP16', 65504]] as const) {
      expect((await infer('/v2/models/tiny/infer', { inputs: [tensor(row(x), { datatype })] })).status, `${datatype} ${x}`).toBe(200);
    }
  });

  it('answers unknown models, versions and aliases with coded 404s', async () => {
    const body = { inputs: [tensor(rowsOf(1))] };
    expect((await infer('/v2/models/nope/infer', body)).json).toMatchObject({ code: 'FL_ERR_MODEL_NOT_FOUND' });
    expect((await infer('/v2/models/nope/infer', body)).status).toBe(404);
    expect((await infer('/v2/models/tiny/versions/9/infer', body)).json.code).toBe('FL_ERR_VERSION_NOT_FOUND');
    expect((await infer('/v2/models/tiny/versions/canary/infer', body)).json.code).toBe('FL_ERR_ALIAS_NOT_FOUND');
    expect((await h.call({ method: 'GET', url: '/v2/models/nope' })).status).toBe(404);
  });

  it('needs a token unless publicInference; auth errors keep the server-wide form', async () => {
    const res = await infer('/v2/models/tiny/infer', { inputs: [tensor(rowsOf(1))] }, null);
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('FL_ERR_AUTH_REQUIRED');
    expect((await h.call({ method: 'GET', url: '/v2/health/live', token: null })).status).toBe(200);
    expect((await h.call({ method: 'GET', url: '/v2/health/ready', token: null })).status).toBe(200);
    expect((await h.call({ method: 'GET', url: '/v2/models/tiny', token: null })).status).toBe(401);
    // Device tokens are for devices: inference takes an inference (or admin) token.
    const device = await infer('/v2/models/tiny/infer', { inputs: [tensor(rowsOf(1))] }, DEVICE);
    expect(device.status).toBe(403);
    expect(device.json.error.code).toBe('FL_ERR_AUTH_FORBIDDEN');
    const inference = (await h.app.flotilla.authenticator.createToken({ role: 'inference', createdBy: 'test' })).token;
    expect((await infer('/v2/models/tiny/infer', { inputs: [tensor(rowsOf(1))] }, inference)).status).toBe(200);
  });
});

describe('publicInference', () => {
  it('serves inference and probes without a token, but not the admin API', async () => {
    const h = await servingApp({ publicInference: true });
    try {
      await h.publishTiny('tiny');
      const res = await h.call({ method: 'POST', url: '/v2/models/tiny/infer', token: null, json: { inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: rowsOf(1)[0] }] } });
      expect(res.status).toBe(200);
      expect((await h.call({ method: 'GET', url: '/v2/health/ready', token: null })).status).toBe(200);
      expect((await h.call({ method: 'GET', url: '/api/v1/deployments', token: null })).status).toBe(401);
    } finally {
      await h.app.close();
    }
  });
});

describe('a model published by a task', () => {
  it('serves version 1 of an mnist-mlp task at once (784 inputs, 10 classes)', async () => {
    const h = await servingApp();
    try {
      await h.app.flotilla.coordinator.createTask({ id: 'mnist', preset: 'mnist-mlp', plan: { clientsPerRound: 2, overSelect: 1, roundDeadlineMs: 60_000 } });
      const meta = (await h.call({ method: 'GET', url: '/v2/models/mnist' })).json;
      expect(meta.inputs).toEqual([{ name: 'hidden1_input', datatype: 'FP32', shape: [-1, 784] }]);
      const image = Array.from({ length: 784 }, (_, i) => (i % 28) / 28);
      const res = await h.call({ method: 'POST', url: '/v2/models/mnist/infer', json: { inputs: [{ name: 'hidden1_input', shape: [2, 784], datatype: 'FP32', data: [image, image] }] } });
      expect(res.status).toBe(200);
      expect(res.json.model_version).toBe('1');
      expect(res.json.outputs[0].shape).toEqual([2, 10]);
      const probs: number[] = res.json.outputs[0].data.slice(0, 10);
      expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    } finally {
      await h.app.close();
    }
  });
});
