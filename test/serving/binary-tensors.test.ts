import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, expectClose, referencePredict, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

/**
 * Requests built by hand from the binary tensor data extension's specification (Triton's
 * protocol/extension_binary_data.md): body = JSON inference header, then each binary input's raw
 * little-endian bytes in input order; `Inference-Header-Content-Length` = the header's byte length.
 */
function binaryRequest(header: object, ...tensors: Buffer[]): { payload: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return {
    payload: Buffer.concat([json, ...tensors]),
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) },
  };
}
const fp32le = (xs: number[]) => {
  const b = Buffer.alloc(xs.length * 4);
  xs.forEach((x, i) => b.writeFloatLE(x, i * 4));
  return b;
};
const int64le = (xs: bigint[]) => {
  const b = Buffer.alloc(xs.length * 8);
  xs.forEach((x, i) => b.writeBigInt64LE(x, i * 8));
  return b;
};

describe('OIP binary tensor data extension', () => {
  let h: ServingHarness;
  let published: Awaited<ReturnType<ServingHarness['publishTiny']>>;
  beforeAll(async () => {
    h = await servingApp();
    published = await h.publishTiny('tiny', 1);
  });
  afterAll(async () => {
    await h.app.close();
  });
  const post = (req: { payload: Buffer; headers: Record<string, string> }) => h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', ...req });

  it('takes FP32 input bytes and answers JSON, the same as a JSON request', async () => {
    const rows = rowsOf(3);
    const want = await referencePredict(published.spec, published.weights[0], rows);
    const res = await post(binaryRequest({ id: 'b1', inputs: [{ name: 'hidden_input', shape: [3, 8], datatype: 'FP32', parameters: { binary_data_size: 96 } }] }, fp32le(rows.flat())));
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ id: 'b1', model_version: '1' });
    expectClose(body.outputs[0].data, want.flat());
    expect((await h.call({ method: 'GET', url: '/v2' })).json.extensions).toContain('binary_tensor_data');
  });

  it('takes INT64 input bytes and answers FP32 output bytes when asked (binary_data), split by Inference-Header-Content-Length', async () => {
    const ints = [[1, 0, -2, 3, 0, 1, 1, 0], [4, -4, 2, 0, 0, 7, -1, 1]];
    const want = await referencePredict(published.spec, published.weights[0], ints);
    const header = {
      inputs: [{ name: 'hidden_input', shape: [2, 8], datatype: 'INT64', parameters: { binary_data_size: 128 } }],
      outputs: [{ name: 'logits', parameters: { binary_data: true } }],
    };
    const res = await post(binaryRequest(header, int64le(ints.flat().map(BigInt))));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/octet-stream/);
    const n = Number(res.headers['inference-header-content-length']);
    const raw = res.rawPayload;
    const head = JSON.parse(raw.subarray(0, n).toString('utf8'));
    expect(head.outputs[0]).toEqual({ name: 'logits', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } });
    expect(raw.length).toBe(n + 24);
    const out = Array.from({ length: 6 }, (_, i) => raw.readFloatLE(n + i * 4));
    expectClose(out, want.flat());
    // binary_data_output on the request asks the same for every output.
    const all = await post(binaryRequest({ ...header, outputs: undefined, parameters: { binary_data_output: true } }, int64le(ints.flat().map(BigInt))));
    expect(all.rawPayload.length).toBe(Number(all.headers['inference-header-content-length']) + 24);
  });

  it('refuses malformed binary requests with 400 FL_ERR_SERVING_BAD_INPUT', async () => {
    const tensor = (over: Record<string, unknown> = {}) => ({ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', parameters: { binary_data_size: 32 }, ...over });
    const good = fp32le(rowsOf(1)[0]);
    const cases: Array<[string, { payload: Buffer; headers: Record<string, string> }]> = [
      ['size vs shape', binaryRequest({ inputs: [tensor({ parameters: { binary_data_size: 28 } })] }, good.subarray(0, 28))],
      ['too few bytes', binaryRequest({ inputs: [tensor()] }, good.subarray(0, 16))],
      ['extra bytes', binaryRequest({ inputs: [tensor()] }, Buffer.concat([good, Buffer.alloc(4)]))],
      ['data and binary', binaryRequest({ inputs: [tensor({ data: rowsOf(1)[0] })] }, good)],
      ['FP16 binary', binaryRequest({ inputs: [tensor({ datatype: 'FP16', parameters: { binary_data_size: 16 } })] }, good.subarray(0, 16))],
      ['NaN', binaryRequest({ inputs: [tensor()] }, fp32le([NaN, 0, 0, 0, 0, 0, 0, 0]))],
      ['INT64 past 2^53', binaryRequest({ inputs: [tensor({ datatype: 'INT64', parameters: { binary_data_size: 64 } })] }, int64le([2n ** 60n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]))],
    ];
    const noHeader = binaryRequest({ inputs: [tensor()] }, good);
    delete noHeader.headers['inference-header-content-length'];
    cases.push(['no header length', noHeader]);
    const tooLong = binaryRequest({ inputs: [tensor()] }, good);
    tooLong.headers['inference-header-content-length'] = '99999';
    cases.push(['header length past the body', tooLong]);
    const notJson = binaryRequest({ inputs: [tensor()] }, good);
    notJson.headers['inference-header-content-length'] = '5';
    cases.push(['header not JSON', notJson]);
    for (const [what, req] of cases) {
      const res = await post(req);
      expect(res.statusCode, what).toBe(400);
      expect(res.json().code, what).toBe('FL_ERR_SERVING_BAD_INPUT');
    }
    // binary_data_size in a JSON body has no bytes to read.
    const json = await h.call({ method: 'POST', url: '/v2/models/tiny/infer', json: { inputs: [tensor()] } });
    expect(json.status).toBe(400);
  });

  it('answers each request from its own bytes when clients repeat the same header (parsed headers are shared)', async () => {
    const header = { inputs: [{ name: 'hidden_input', shape: [2, 8], datatype: 'FP32', parameters: { binary_data_size: 64 } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] };
    const a = rowsOf(2);
    const b = a.map((r) => r.map((x) => 1 - x));
    // A refused request first: a body too short for the (same) header changes nothing for the next ones.
    const short = await post(binaryRequest(header, fp32le(a.flat()).subarray(0, 60)));
    expect(short.statusCode).toBe(400);
    expect(short.json().code).toBe('FL_ERR_SERVING_BAD_INPUT');
    const read = (res: Awaited<ReturnType<typeof post>>) => {
      const n = Number(res.headers['inference-header-content-length']);
      return Array.from({ length: 6 }, (_, i) => res.rawPayload.readFloatLE(n + i * 4));
    };
    const [ra, rb, ra2] = await Promise.all([post(binaryRequest(header, fp32le(a.flat()))), post(binaryRequest(header, fp32le(b.flat()))), post(binaryRequest(header, fp32le(a.flat())))]);
    for (const r of [ra, rb, ra2]) expect(r.statusCode).toBe(200);
    expectClose(read(ra), (await referencePredict(published.spec, published.weights[0], a)).flat());
    expectClose(read(rb), (await referencePredict(published.spec, published.weights[0], b)).flat());
    expectClose(read(ra2), read(ra));
    // A header naming data and binary bytes for one input is refused every time it is sent.
    const both = { inputs: [{ ...header.inputs[0], data: a.flat() }] };
    for (let i = 0; i < 2; i++) expect((await post(binaryRequest(both, fp32le(a.flat())))).json().code).toBe('FL_ERR_SERVING_BAD_INPUT');
  });

  it('a binary answer\'s header says what the JSON answer says, with binary_data_size for data', async () => {
    const rows = rowsOf(2);
    const input = { name: 'hidden_input', shape: [2, 8], datatype: 'FP32', parameters: { binary_data_size: 64 } };
    const asJson = await post(binaryRequest({ id: 'same "q" \\ x', inputs: [input] }, fp32le(rows.flat())));
    const asBinary = await post(binaryRequest({ id: 'same "q" \\ x', inputs: [input], parameters: { binary_data_output: true } }, fp32le(rows.flat())));
    expect(asJson.statusCode).toBe(200);
    expect(asBinary.statusCode).toBe(200);
    const n = Number(asBinary.headers['inference-header-content-length']);
    const text = asBinary.rawPayload.subarray(0, n).toString('utf8');
    const head = JSON.parse(text);
    // Canonical JSON (what JSON.stringify writes) of the JSON answer, its data swapped for sizes.
    const json = asJson.json();
    expect(text).toBe(JSON.stringify({ ...json, outputs: json.outputs.map((o: { data: number[] }) => ({ ...o, data: undefined, parameters: { binary_data_size: o.data.length * 4 } })) }));
    expect(head.id).toBe('same "q" \\ x');
  });

  it('binary answers of different endpoints, versions, row counts and ids, interleaved, each say what their own JSON answer says', async () => {
    // Answer headers are put together from cached parts (binary-tensors.ts): no answer may carry another's.
    await h.app.flotilla.serving.createDeployment({ name: 'tiny-dep', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] } });
    const cases = [
      { url: '/v2/models/tiny/infer', rows: 2, id: 'first' },
      { url: '/v2/models/tiny/versions/1/infer', rows: 1, id: 'second "quoted"' },
      { url: '/v2/models/tiny-dep/infer', rows: 3, id: 'third \\ back' },
    ];
    for (const i of [0, 1, 2, 0, 2, 1, 1, 0]) {
      const c = cases[i];
      const rows = rowsOf(c.rows);
      const input = { name: 'hidden_input', shape: [c.rows, 8], datatype: 'FP32', parameters: { binary_data_size: c.rows * 32 } };
      const at = (req: { payload: Buffer; headers: Record<string, string> }) => h.app.inject({ method: 'POST', url: c.url, ...req });
      const asJson = await at(binaryRequest({ id: c.id, inputs: [input] }, fp32le(rows.flat())));
      const asBinary = await at(binaryRequest({ id: c.id, inputs: [input], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }, fp32le(rows.flat())));
      expect(asBinary.statusCode, c.url).toBe(200);
      const n = Number(asBinary.headers['inference-header-content-length']);
      const json = asJson.json();
      expect(asBinary.rawPayload.subarray(0, n).toString('utf8'), c.url).toBe(JSON.stringify({ ...json, outputs: json.outputs.map((o: { data: number[] }) => ({ ...o, data: undefined, parameters: { binary_data_size: o.data.length * 4 } })) }));
      expect(asBinary.rawPayload.length).toBe(n + c.rows * 3 * 4);
      expect(asBinary.headers['x-request-id']).toBe(c.id);
    }
  });
});
