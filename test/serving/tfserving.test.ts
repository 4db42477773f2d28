import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, referencePredict, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

describe('TF Serving REST API', () => {
  let h: ServingHarness;
  let published: Awaited<ReturnType<ServingHarness['publishTiny']>>;
  beforeAll(async () => {
    h = await servingApp();
    published = await h.publishTiny('tiny', 2);
    await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/stable', json: { version: 1 } });
  });
  afterAll(async () => {
    await h.app.close();
  });
  const post = (url: string, json: unknown) => h.call({ method: 'POST', url, json });

  it('predicts in row format (instances) and columnar format (inputs), with model_version', async () => {
    const rows = rowsOf(4);
    const want = await referencePredict(published.spec, published.weights[1], rows);
    const row = await post('/v1/models/tiny:predict', { instances: rows });
    expect(row.status).toBe(200);
    expect(row.json.model_version).toBe('2');
    expect(row.headers['x-model-version']).toBe('2');
    expectClose(row.json.predictions.flat(), want.flat());
    const named = await post('/v1/models/tiny:predict', { signature_name: 'serving_default', instances: rows.map((r) => ({ hidden_input: r })) });
    expectClose(named.json.predictions.flat(), want.flat());
    const col = await post('/v1/models/tiny:predict', { inputs: rows });
    expectClose(col.json.outputs.flat(), want.flat());
    const colNamed = await post('/v1/models/tiny:predict', { inputs: { hidden_input: rows } });
    expectClose(colNamed.json.outputs.flat(), want.flat());
  });

  it('predicts a version and a label (alias)', async () => {
    const rows = rowsOf(2, 3);
    const want = await referencePredict(published.spec, published.weights[0], rows);
    const v = await post('/v1/models/tiny/versions/1:predict', { instances: rows });
    expect(v.json.model_version).toBe('1');
    expectClose(v.json.predictions.flat(), want.flat());
    const l = await post('/v1/models/tiny/labels/stable:predict', { instances: rows });
    expect(l.json.model_version).toBe('1');
  });

  it('reports model status', async () => {
    await post('/v1/models/tiny:predict', { instances: rowsOf(1) });
    const s = await h.call({ method: 'GET', url: '/v1/models/tiny' });
    expect(s.json).toEqual({ model_version_status: [{ version: '2', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] });
    expect((await h.call({ method: 'GET', url: '/v1/models/tiny/versions/1' })).json.model_version_status[0].version).toBe('1');
    expect((await h.call({ method: 'GET', url: '/v1/models/nope' })).status).toBe(404);
    const meta = (await h.call({ method: 'GET', url: '/v1/models/tiny/metadata' })).json;
    expect(meta.model_spec).toEqual({ name: 'tiny', signature_name: '', version: '2' });
    const sig = meta.metadata.signature_def.signature_def.serving_default;
    expect(sig.inputs.hidden_input.tensor_shape.dim.map((d: { size: string }) => d.size)).toEqual(['-1', '8']);
    expect(sig.outputs.logits.dtype).toBe('DT_FLOAT');
    expect((await h.call({ method: 'GET', url: '/v1/models/tiny/versions/1/metadata' })).json.model_spec.version).toBe('1');
  });

  it('answers bad requests with 400 and the { error } form', async () => {
    const rows = rowsOf(2);
    const cases: Array<[string, string, unknown]> = [
      ['both instances and inputs', '/v1/models/tiny:predict', { instances: rows, inputs: rows }],
      ['neither', '/v1/models/tiny:predict', {}],
      ['short instance', '/v1/models/tiny:predict', { instances: [rows[0].slice(1)] }],
      ['strings', '/v1/models/tiny:predict', { instances: [rows[0].map(String)] }],
      ['wrong input name', '/v1/models/tiny:predict', { instances: [{ pixels: rows[0] }] }],
      ['columnar ragged', '/v1/models/tiny:predict', { inputs: [rows[0], rows[1].slice(2)] }],
      ['empty instances', '/v1/models/tiny:predict', { instances: [] }],
      ['classify', '/v1/models/tiny:classify', { instances: rows }],
      ['version not a number', '/v1/models/tiny/versions/stable:predict', { instances: rows }],
    ];
    for (const [what, url, body] of cases) {
      const res = await post(url, body);
      expect(res.status, what).toBe(400);
      expect(res.json.code, what).toBe('FL_ERR_SERVING_BAD_INPUT');
      expect(typeof res.json.error, what).toBe('string');
    }
    expect((await post('/v1/models/nope:predict', { instances: rows })).json.code).toBe('FL_ERR_MODEL_NOT_FOUND');
    expect((await post('/v1/models/tiny', { instances: rows })).status).toBe(404);
  });
});
