import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApp, type AdminHarness } from './admin-helpers.js';

describe('OpenAPI document and docs page', () => {
  let h: AdminHarness;
  beforeAll(async () => {
    h = await adminApp();
  });
  afterAll(async () => {
    await h.app.close();
  });

  it('describes every API route from its zod schemas, with bearer auth', async () => {
    const res = await h.call({ method: 'GET', url: '/openapi.json', token: null });
    expect(res.status).toBe(200);
    const doc = res.json;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    const api = h.app.flotilla.routes.filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD');
    expect(api.length).toBeGreaterThan(20);
    for (const r of api) {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      expect(doc.paths[path]?.[r.method.toLowerCase()], `${r.method} ${path}`).toBeDefined();
    }
    const create = doc.paths['/api/v1/tasks'].post.requestBody.content['application/json'].schema;
    expect(create.additionalProperties).toBe(false);
    expect(create.required).toEqual(expect.arrayContaining(['id', 'plan']));
    expect(create.properties.weights.type).toBe('string');
    const rounds = doc.paths['/api/v1/tasks/{id}/rounds'].get.parameters.map((p: any) => `${p.in}:${p.name}`).sort();
    expect(rounds).toEqual(['path:id', 'query:limit', 'query:offset']);
    expect(doc.paths['/healthz'].get.security).toEqual([]);
  });

  it('serves Swagger UI from this server only: no asset from another origin', async () => {
    const page = await h.call({ method: 'GET', url: '/docs/', token: null });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(2);
    for (const ref of refs) expect(ref, ref).not.toMatch(/^(https?:)?\/\//);
    for (const ref of refs.filter((x) => x.endsWith('.js') || x.endsWith('.css'))) {
      const url = new URL(ref, 'http://x/docs/').pathname;
      expect((await h.call({ method: 'GET', url, token: null })).status, url).toBe(200);
    }
    const init = await h.call({ method: 'GET', url: '/docs/static/swagger-initializer.js', token: null });
    expect(init.body).not.toMatch(/https?:\/\/(?!stackoverflow)/);
  });

  it('rejects unknown fields, bad params and oversize bodies with coded errors', async () => {
    const unknown = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 'u', preset: 'tiny-mlp', plan: { clientsPerRound: 1 }, colour: 'red' } });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.code).toBe('FL_ERR_HTTP_VALIDATION');
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds?limit=5&sort=asc' })).json.error.code).toBe('FL_ERR_HTTP_VALIDATION');
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks/t1/rounds?limit=-1' })).status).toBe(400);
    expect((await h.call({ method: 'GET', url: '/api/v1/tasks/bad%20id' })).status).toBe(400);
    expect((await h.call({ method: 'POST', url: '/api/v1/tasks', payload: '{"id":', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await h.call({ method: 'POST', url: '/api/v1/tasks', payload: 'id=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).json.error.code).toBe('FL_ERR_HTTP_UNSUPPORTED_MEDIA');
    const small = await adminApp({ bodyLimit: 1024 });
    try {
      const big = await small.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 'big', preset: 'tiny-mlp', plan: { clientsPerRound: 1 }, weights: 'A'.repeat(4096) } });
      expect(big.status).toBe(413);
      expect(big.json.error.code).toBe('FL_ERR_HTTP_PAYLOAD_TOO_LARGE');
      // Without a credential the body is never read: 401, not 413.
      expect((await small.call({ method: 'POST', url: '/api/v1/tasks', token: null, payload: { weights: 'A'.repeat(4096) } })).status).toBe(401);
    } finally {
      await small.app.close();
    }
  });
});
