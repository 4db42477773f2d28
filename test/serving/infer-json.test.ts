import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInferJson } from '../../server/src/serving/infer-json.js';
import { ADMIN, servingApp, type ServingHarness } from './serving-helpers.js';

/** JSON.parse's value with the fast path's Float64Arrays turned back into arrays. */
const plain = (v: unknown): unknown =>
  v instanceof Float64Array ? Array.from(v) : Array.isArray(v) ? v.map(plain) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;
const fast = (text: string) => parseInferJson(Buffer.from(text, 'utf8'));

/** Deterministic generator (no Math.random: a failure must reproduce). */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('fast JSON path for inference bodies (infer-json.ts)', () => {
  it('reads every number exactly as JSON.parse does', () => {
    const rnd = lcg(7);
    const texts: string[] = ['0', '-0', '-0.0', '1', '-1', '0.1', '0.5', '1e400', '-1e400', '1e-400', '5e-324', '2.2250738585072014e-308', '1.7976931348623157e308', '9007199254740993', '123456789012345', '1234567890123456', '0.000001', '1E5', '1e+5', '1.5e-7', '3.4028235677973366e38', '0.30000000000000004', '100000000000000000000000'];
    for (let i = 0; i < 3000; i++) {
      const x = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20);
      const k = Math.floor(rnd() * 5);
      texts.push(k === 0 ? String(x) : k === 1 ? x.toFixed(Math.floor(rnd() * 18)) : k === 2 ? x.toExponential(Math.floor(rnd() * 17)) : k === 3 ? String(Math.round(x * 1e6)) : String(Math.fround(x)));
    }
    const text = `{"data":[${texts.join(',')}],"other":[${texts.slice(0, 50).join(', ')}]}`;
    const got = fast(text) as { data: Float64Array; other: number[] };
    const want = JSON.parse(text) as { data: number[]; other: number[] };
    expect(got.data).toBeInstanceOf(Float64Array);
    expect(Array.isArray(got.other)).toBe(true);
    for (let i = 0; i < want.data.length; i++) if (!Object.is(got.data[i], want.data[i])) throw new Error(`${texts[i]}: ${got.data[i]} != ${want.data[i]}`);
    for (let i = 0; i < want.other.length; i++) expect(Object.is(got.other[i], want.other[i]), texts[i]).toBe(true);
  });

  it('gives what JSON.parse gives for OIP and TF Serving bodies, data flat as Float64Array only', () => {
    const bodies = [
      { id: 'r-1', parameters: { routing_key: 'u7', binary_data_output: false, nested: { a: [1, 'x', null, true] } }, inputs: [{ name: 'hidden_input', shape: [2, 3], datatype: 'FP32', data: [1, 2.5, -3, 0, 1e-3, 7] }], outputs: [{ name: 'logits' }] },
      { inputs: [{ name: 'x', shape: [2, 2], datatype: 'INT32', data: [[1, 2], [3, 4]] }] },
      { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: ['1', 'NaN'] }] },
      { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, null] }] },
      { inputs: [{ name: 'x', shape: [0, 2], datatype: 'FP32', data: [] }] },
      { inputs: [{ name: 'ünïcödé ✓', shape: [1], datatype: 'FP32', data: [1] }], parameters: { note: 'tab\there "quoted" \\ \u2028 \ud83d\ude00' } },
      { instances: [[1, 2, 3], [4, 5, 6]] },
      { inputs: { a: [[1]], b: [[2]] }, signature_name: 'serving_default' },
      {},
    ];
    for (const body of bodies) {
      for (const text of [JSON.stringify(body), JSON.stringify(body, null, 2)]) {
        const got = fast(text);
        expect(got, text).not.toBeNull();
        expect(plain(got), text).toEqual(JSON.parse(text));
      }
    }
    const dataOf = (body: unknown) => (fast(JSON.stringify(body)) as { inputs: Array<{ data: unknown }> }).inputs[0].data;
    expect(dataOf(bodies[0])).toBeInstanceOf(Float64Array);
    expect(Array.isArray(dataOf(bodies[1]))).toBe(true);
  });

  it('leaves everything it is not sure of to the general path (null)', () => {
    const cases = [
      '', ' ', '{"inputs": [', '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{"a":-}', '{"a":1e}', '{"a":[1,2,]}', '{"a":1,}', '{"a":NaN}', '{"data":[1,NaN]}',
      '{"data":[Infinity]}', "{'a':1}", '{"a":1} x', '{"a":1}{}', '[1,2]', '"x"', '1', 'null', '\ufeff{"a":1}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}',
      '{"\\u0061":1}', '{"a":"line\nbreak"}', '{"a":"\\x"}', '{"a":tru}', '{"a":nul}', `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`, '{"a":1 2}', '{"a" 1}', '{a:1}',
    ];
    for (const text of cases) expect(fast(text), JSON.stringify(text)).toBeNull();
    // Bytes that are not UTF-8 inside a string.
    expect(parseInferJson(Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]))).toBeNull();
  });
});

describe('inference routes answer bad bodies on the fast path as on the general path', () => {
  let h: ServingHarness;
  beforeAll(async () => {
    h = await servingApp({ bodyLimit: 64 * 1024 });
    await h.publishTiny('tiny', 1);
  });
  afterAll(async () => {
    await h.app.close();
  });

  const post = async (url: string, payload: string) => {
    const res = await h.app.inject({ method: 'POST', url, payload, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } });
    return { status: res.statusCode, body: res.json() as { code?: string; error?: unknown; details?: unknown; outputs?: unknown } };
  };
  const row = [0.5, -1, 2, 0, 0.25, 3, 1, 0];
  const oip = (data: string, shape = '[1,8]', datatype = 'FP32') => `{"inputs":[{"name":"hidden_input","shape":${shape},"datatype":"${datatype}","data":${data}}]}`;

  it('same status, code and details as JSON.parse + zod (a key escape forces the general path)', async () => {
    const cases: Array<[string, string, number, string]> = [
      ['fine', oip(JSON.stringify(row)), 200, ''],
      ['wrong shape', oip(JSON.stringify(row), '[1,7]'), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['length', oip(JSON.stringify(row.slice(1))), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['strings', oip(JSON.stringify(row.map(String))), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['NaN strings', oip(JSON.stringify(row.map(() => 'NaN'))), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['a null', oip(`[null,${row.slice(1).join(',')}]`), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['Infinity by exponent', oip(`[1e400,${row.slice(1).join(',')}]`), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['beyond float32', oip(`[1e39,${row.slice(1).join(',')}]`), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['int32 fractions', oip(JSON.stringify(row), '[1,8]', 'INT32'), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['uint8 range', oip('[1,2,3,4,5,6,7,300]', '[1,8]', 'UINT8'), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['nested ragged', oip('[[1,2,3,4,5,6,7],[1]]', '[2,8]'), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['nested fine', oip(`[${JSON.stringify(row)}]`), 200, ''],
      ['data an object', oip('{"x":1}'), 400, 'FL_ERR_SERVING_BAD_INPUT'],
      ['shape strings', oip(JSON.stringify(row), '["1","8"]'), 400, 'FL_ERR_SERVING_BAD_INPUT'],
    ];
    for (const [what, text, status, code] of cases) {
      const quick = await post('/v2/models/tiny/infer', text);
      const general = await post('/v2/models/tiny/infer', text.replace('"inputs"', '"\\u0069nputs"'));
      expect(quick.status, what).toBe(status);
      if (code) {
        expect(quick.body.code, what).toBe(code);
        expect(quick.body, what).toEqual(general.body);
      } else expect(quick.body.outputs, what).toEqual(general.body.outputs);
      expect(general.status, what).toBe(status);
    }
  });

  it('invalid JSON, NaN literals, poisoned and empty bodies get the general parser codes; oversized bodies 413', async () => {
    for (const text of [oip(`[NaN,${row.slice(1).join(',')}]`), '{"inputs": [', '{"__proto__":{"x":1},"inputs":[]}', '']) {
      const res = await post('/v2/models/tiny/infer', text);
      expect(res.status, text).toBe(400);
      expect(res.body.code, text).toBe('FL_ERR_SERVING_BAD_INPUT');
    }
    const big = oip(`[${Array.from({ length: 20_000 }, () => '0.123').join(',')}]`, '[2500,8]');
    const res = await post('/v2/models/tiny/infer', big);
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('FL_ERR_HTTP_PAYLOAD_TOO_LARGE');
    // TF Serving bodies take the same parser.
    const tf = await post('/v1/models/tiny:predict', `{"instances":[${JSON.stringify(row)},[1,2,3,4,5,6,7,"NaN"]]}`);
    expect(tf.status).toBe(400);
    expect(tf.body.code ?? (tf.body.error as { code?: string })?.code).toBe('FL_ERR_SERVING_BAD_INPUT');
    expect((await post('/v1/models/tiny:predict', `{"instances":[${JSON.stringify(row)}]}`)).status).toBe(200);
  });
});
