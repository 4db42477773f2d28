import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { isInferBody, isInferParams } from '../../server/src/http/infer-validation.js';
import { InferBody } from '../../server/src/http/inference-routes.js';
import { ADMIN, expectClose, referencePredict, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

/**
 * The OIP inference routes check bodies, path parameters and queries with a fast path
 * (server/src/http/infer-validation.ts) that hands everything it is not sure of to the routes' zod
 * schemas: bodies on either side of each bound must get the same answers as before.
 */
describe('OIP request validation (fast path and zod fallback agree)', () => {
  let h: ServingHarness;
  let published: Awaited<ReturnType<ServingHarness['publishTiny']>>;
  beforeAll(async () => {
    h = await servingApp();
    published = await h.publishTiny('tiny', 1);
  });
  afterAll(async () => {
    await h.app.close();
  });

  const rows = rowsOf(2);
  const input = (over: Record<string, unknown> = {}) => ({ name: 'hidden_input', shape: [2, 8], datatype: 'FP32', data: rows.flat(), ...over });
  const infer = (body: unknown, url = '/v2/models/tiny/infer') => h.call({ method: 'POST', url, json: body });
  /** What the fast path accepts, zod accepts and gives back unchanged. */
  const agrees = (body: unknown) => {
    if (!isInferBody(body)) return;
    const z = InferBody.safeParse(body);
    expect(z.success, JSON.stringify(body)).toBe(true);
    expect(z.data).toEqual(body);
  };

  it('accepts valid bodies, with or without optional fields and with keys the schema does not name (ignored)', async () => {
    const want = (await referencePredict(published.spec, published.weights[0], rows)).flat();
    const bodies: unknown[] = [
      { inputs: [input()] },
      { id: 'r-1', parameters: { a: 1 }, inputs: [input({ parameters: { x: [1] } })], outputs: [{ name: 'logits', parameters: {} }] },
      { inputs: [input()], outputs: [] },
      { inputs: [input()], extra: true, nested: { deep: 1 } },
      { inputs: [input({ unknownKey: 'ignored' })], outputs: [{ name: 'logits', other: 1 }] },
      { id: ' ~', inputs: [input()] },
    ];
    // The fast path takes the plain ones (known keys only); zod the rest.
    expect(bodies.map(isInferBody)).toEqual([true, true, true, false, false, true]);
    for (const body of bodies) {
      agrees(body);
      const res = await infer(body);
      expect(res.status, JSON.stringify(body)).toBe(200);
      expectClose(res.json.outputs[0].data, want);
    }
    const explicit = await infer({ inputs: [input()] }, '/v2/models/tiny/versions/1/infer?variant=float32');
    expect(explicit.status).toBe(200);
    // Keys the schema does not name are dropped, not echoed: the body id stays the only id.
    expect((await infer({ id: 'kept', inputs: [input()], model_name: 'other' })).json).toMatchObject({ id: 'kept', model_name: 'tiny' });
  });

  it('refuses every body outside the schema with 400 FL_ERR_SERVING_BAD_INPUT, as zod does', async () => {
    const bad: unknown[] = [
      null,
      [],
      'text',
      {},
      { inputs: [] },
      { inputs: Array.from({ length: 17 }, () => input()) },
      { inputs: [input({ name: '' })] },
      { inputs: [input({ name: 'x'.repeat(257) })] },
      { inputs: [input({ shape: [] })] },
      { inputs: [input({ shape: [2, -8] })] },
      { inputs: [input({ shape: [2, 8.5] })] },
      { inputs: [input({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] })] },
      { inputs: [input({ shape: ['2', 8] })] },
      { inputs: [input({ datatype: '' })] },
      { inputs: [input({ datatype: 'X'.repeat(17) })] },
      { inputs: [input({ parameters: [1] })] },
      { inputs: [input({ parameters: null })] },
      { inputs: [input()], parameters: 'p' },
      { inputs: [input()], id: 'line\nbreak' },
      { inputs: [input()], id: '' },
      { inputs: [input()], id: 7 },
      { inputs: [input()], outputs: [{ name: '' }] },
      { inputs: [input()], outputs: [{}] },
      { inputs: [input()], outputs: Array.from({ length: 17 }, () => ({ name: 'logits' })) },
      { inputs: [input()], outputs: {} },
      { inputs: { 0: input() } },
    ];
    for (const body of bad) {
      agrees(body);
      expect(isInferBody(body), JSON.stringify(body)).toBe(false);
      const res = await infer(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.code, JSON.stringify(body)).toBe('FL_ERR_SERVING_BAD_INPUT');
    }
    // A query the route does not know, and an unknown variant.
    for (const q of ['?other=1', '?variant=nope']) {
      const res = await infer({ inputs: [input()] }, `/v2/models/tiny/infer${q}`);
      expect(res.status, q).toBe(400);
      expect(res.json.code).toBe('FL_ERR_SERVING_BAD_INPUT');
    }
  });

  it("takes the router's own path-parameter objects on the fast path, as zod would (no per-request zod)", async () => {
    // find-my-way hands routes a parameters object whose prototype carries nothing (not Object.prototype).
    const seen: unknown[] = [];
    const app = Fastify();
    app.post('/v2/models/:name/infer', async (req) => (seen.push(req.params), {}));
    app.post('/v2/models/:name/versions/:version/infer', async (req) => (seen.push(req.params), {}));
    await app.inject({ method: 'POST', url: '/v2/models/tiny/infer', payload: {} });
    await app.inject({ method: 'POST', url: '/v2/models/tiny/versions/latest/infer', payload: {} });
    await app.close();
    expect(seen).toHaveLength(2);
    for (const params of seen) {
      expect(Object.getPrototypeOf(params)).not.toBe(Object.prototype);
      expect(isInferParams(params)).toBe(true);
    }
    // Beyond the schema's bounds, or with keys an object's prototype lends it, it is zod's to answer.
    const proto = { name: 'inherited' };
    expect(isInferParams(Object.create(proto))).toBe(false);
    expect(isInferParams(Object.assign(Object.create(null), { name: '' }))).toBe(false);
    expect(isInferParams(Object.assign(Object.create(null), { name: 'tiny', other: '1' }))).toBe(false);
    expect(isInferParams(Object.assign(Object.create(null), { name: 'x'.repeat(129) }))).toBe(false);
    // Through the server: a path parameter beyond its bound is refused by zod, with its code.
    const long = await infer({ inputs: [input()] }, `/v2/models/${'x'.repeat(129)}/infer`);
    expect(long.status).toBe(400);
    expect(long.json.code).toBe('FL_ERR_SERVING_BAD_INPUT');
  });

  it('a __proto__ key in a body is not taken as the object prototype', async () => {
    const raw = `{"inputs":[{"name":"hidden_input","shape":[2,8],"datatype":"FP32","data":${JSON.stringify(rows.flat())},"parameters":{"__proto__":{"polluted":true}}}],"__proto__":{"x":1}}`;
    const res = await h.app.inject({ method: 'POST', url: '/v2/models/tiny/infer', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` }, payload: raw });
    expect([200, 400]).toContain(res.statusCode);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
