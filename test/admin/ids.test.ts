import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPreset, specOf } from '@flotilla/model';
import { MAX_ID_LENGTH, MemoryBlobStore, MemoryStore, type FlotillaApp } from '@flotilla/server';
import { httpCall } from '../helpers/http-call.js';
import { startServer } from '../helpers/server.js';
import { fillUrl } from './admin-helpers.js';

const ADMIN = 'admin-token-for-id-tests-0123456789';

/**
 * Ids over real HTTP: an id the API accepts at creation is accepted by every route that names it
 * (fastify's router refuses path parameters past maxParamLength), and values that cannot appear
 * in a response header (newline, NUL, non-ASCII) are refused with a coded 400 before they could.
 */
describe('ids accepted at creation work on every route; header-unsafe ids are refused', () => {
  let app: FlotillaApp;
  let url: string;
  const longId = 'T'.repeat(MAX_ID_LENGTH);
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => httpCall(url, method, path, ADMIN, body, headers);

  beforeAll(async () => {
    ({ app, url } = await startServer({ store: new MemoryStore(), blobs: new MemoryBlobStore(), adminToken: ADMIN, processMetrics: false, authRateLimit: false }));
    const preset = buildPreset('tiny-mlp');
    const { spec, weights } = specOf(preset.model, preset.numClasses);
    preset.model.dispose();
    await app.flotilla.registry.publish({ model: 'tiny', spec, weights });
    await app.flotilla.registry.publish({ model: longId, spec, weights });
  });
  afterAll(async () => {
    await app?.close();
  });

  it(`creates a task with a ${MAX_ID_LENGTH}-character id and answers every task route for it`, async () => {
    const created = await call('POST', '/api/v1/tasks', { id: longId, preset: 'tiny-mlp', plan: { clientsPerRound: 2 } });
    expect(created.status).toBe(201);
    expect((await call('GET', `/api/v1/tasks/${longId}`)).status).toBe(200);
    expect((await call('GET', `/api/v1/tasks/${longId}/rounds`)).status).toBe(200);
    expect((await call('PATCH', `/api/v1/tasks/${longId}/plan`, { clientsPerRound: 3 })).status).toBe(200);
    expect((await call('POST', `/api/v1/tasks/${longId}/start`)).status).toBe(200);
    expect((await call('GET', `/api/v1/models/${longId}/versions/1/model.json`)).status).toBe(200);
    const tooLong = await call('POST', '/api/v1/tasks', { id: longId + 'x', preset: 'tiny-mlp', plan: { clientsPerRound: 2 } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.error.code).toBe('FL_ERR_HTTP_VALIDATION');
  });

  it('no route refuses a maximal id in the router: every parameter of every route takes one', async () => {
    // Fill every parameter with the longest id (and a TF Serving verb where the route takes one):
    // the answer may be 404 (no such thing) or 400 from the route's own schema, never the router's refusal.
    for (const r of app.flotilla.routes) {
      if (!r.url.includes(':') || r.method === 'HEAD') continue;
      const path = fillUrl(r.url, longId).replace(/(\/v1\/models\/[^/]+(?:\/(?:versions|labels)\/[^/]+)?)$/, r.method === 'POST' ? '$1:predict' : '$1');
      const res = await call(r.method, path, r.method === 'GET' || r.method === 'DELETE' ? undefined : {});
      expect(res.status, `${r.method} ${r.url}`).toBeLessThan(500);
      expect(String(res.json?.error?.details?.reason ?? ''), `${r.method} ${r.url}`).not.toMatch(/^FST_/);
    }
    // And a TF Serving predict on the longest model name actually serves.
    const pred = await call('POST', `/v1/models/${longId}:predict`, { instances: [[0, 0, 0, 0, 0, 0, 0, 0]] });
    expect(pred.status).toBe(200);
  });

  it('refuses an OIP request id with a newline, NUL, emoji or other non-printable character with a coded 400, and serves after', async () => {
    const tensor = { name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: [0, 0, 0, 0, 0, 0, 0, 0] };
    for (const id of ['a\nb', 'a\r\nx-evil: 1', 'nul\u0000', 'emoji-\u{1F600}', 'caf\u00e9', 'tab\there', '']) {
      const res = await call('POST', '/v2/models/tiny/infer', { id, inputs: [tensor] });
      expect(res.status, JSON.stringify(id)).toBe(400);
      expect(res.json.code, JSON.stringify(id)).toBe('FL_ERR_SERVING_BAD_INPUT');
      expect(res.headers.get('x-evil')).toBeNull();
    }
    const ok = await call('POST', '/v2/models/tiny/infer', { id: 'req-1 (retry #2)', inputs: [tensor] });
    expect(ok.status).toBe(200);
    expect(ok.json.id).toBe('req-1 (retry #2)');
    expect(ok.headers.get('x-request-id')).toBe('req-1 (retry #2)');
    // An x-request-id header with bytes outside printable ASCII is not echoed: the answer names a fresh id.
    const latin = await call('POST', '/v2/models/tiny/infer', { inputs: [tensor] }, { 'x-request-id': 'ok-\u00ff' });
    expect(latin.status).toBe(200);
    expect(latin.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses header-unsafe deployment names at creation', async () => {
    for (const name of ['bad\nname', 'nul\u0000', 'emoji-\u{1F600}']) {
      const res = await call('POST', '/api/v1/deployments', { name, model: 'tiny', routing: { mode: 'split', targets: [{ ref: 'latest' }] } });
      expect(res.status, JSON.stringify(name)).toBe(400);
      expect(res.json.error.code).toMatch(/^FL_ERR_(HTTP_VALIDATION|DEPLOYMENT_INVALID)$/);
    }
  });
});
