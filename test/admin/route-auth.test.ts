import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INFERENCE_PUBLIC_ROUTES, matchesRoute, PUBLIC_ROUTES } from '../../server/src/http/auth.js';
import { adminApp, fillUrl, type AdminHarness } from './admin-helpers.js';

const isPublic = (url: string, extra: readonly string[] = []) => matchesRoute(url, [...PUBLIC_ROUTES, ...extra]);

/**
 * Walks the whole route table (collected by an onRoute hook as plugins register): every route
 * that is not documented public answers 401 without a token and with an unknown token, and 403
 * with a valid token of every role it does not admit (viewer, device, inference).
 */
describe('every route needs the right credential', () => {
  let h: AdminHarness;
  beforeAll(async () => {
    h = await adminApp();
  });
  afterAll(async () => {
    await h.app.close();
  });

  it('has a guard on every route except the documented public ones', () => {
    const routes = h.app.flotilla.routes;
    expect(routes.length).toBeGreaterThan(30);
    const unguarded = routes.filter((r) => r.roles === null && !isPublic(r.url)).map((r) => `${r.method} ${r.url}`);
    expect(unguarded).toEqual([]);
  });

  it('answers 401 without a token and with a wrong one, 403 with the wrong role', async () => {
    const guarded = h.app.flotilla.routes.filter((r) => r.roles !== null);
    const forbiddenChecked = { viewer: 0, device: 0, inference: 0 };
    for (const r of guarded) {
      const url = fillUrl(r.url);
      const method = r.method as 'GET' | 'HEAD' | 'POST';
      const none = await h.call({ method, url, token: null });
      expect(none.status, `${r.method} ${r.url} without token`).toBe(401);
      if (method !== 'HEAD') expect(none.json.error.code).toBe('FL_ERR_AUTH_REQUIRED');
      const bad = await h.call({ method, url, token: 'flt.AAAAAAAAAAAA.' + 'A'.repeat(43) });
      expect(bad.status, `${r.method} ${r.url} with unknown token`).toBe(401);
      if (method !== 'HEAD') expect(bad.json.error.code).toBe('FL_ERR_AUTH_INVALID_TOKEN');
      for (const role of ['viewer', 'device', 'inference'] as const) {
        if (r.roles!.includes(role)) continue;
        const res = await h.call({ method, url, token: h[role] });
        expect(res.status, `${r.method} ${r.url} with a ${role} token`).toBe(403);
        if (method !== 'HEAD') expect(res.json.error.code).toBe('FL_ERR_AUTH_FORBIDDEN');
        forbiddenChecked[role]++;
      }
    }
    // Every role is refused somewhere: the admin API to all three, inference to viewer and device.
    expect(forbiddenChecked.viewer).toBeGreaterThan(20);
    expect(forbiddenChecked.device).toBeGreaterThan(20);
    expect(forbiddenChecked.inference).toBeGreaterThan(40);
  });

  it('serves the public routes without a token', async () => {
    for (const url of ['/healthz', '/readyz', '/openapi.json', '/docs/']) {
      expect((await h.call({ method: 'GET', url, token: null })).status, url).toBe(200);
    }
    expect((await h.call({ method: 'GET', url: '/metrics', token: null })).status).toBe(401);
  });

  it('refuses a malformed Authorization header and a bearer token that is too long', async () => {
    for (const authorization of ['Basic abc', 'Bearer', 'Bearer   ', `Bearer ${'x'.repeat(600)}`, 'token abc']) {
      const res = await h.app.inject({ method: 'GET', url: '/api/v1/tasks', headers: { authorization } });
      expect(res.statusCode, authorization.slice(0, 20)).toBe(401);
    }
  });
});

describe('auth options', () => {
  it('opens only the documented inference routes with publicInference', async () => {
    const h = await adminApp({ publicInference: true });
    try {
      const open = h.app.flotilla.routes.filter((r) => r.roles === null && !isPublic(r.url));
      for (const r of open) expect(matchesRoute(r.url, INFERENCE_PUBLIC_ROUTES), `${r.method} ${r.url}`).toBe(true);
      // Admin routes keep their guards.
      expect((await h.call({ method: 'GET', url: '/api/v1/tasks', token: null })).status).toBe(401);
    } finally {
      await h.app.close();
    }
  });

  it('serves /metrics publicly only when configured', async () => {
    const h = await adminApp({ publicMetrics: true });
    try {
      const res = await h.call({ method: 'GET', url: '/metrics', token: null });
      expect(res.status).toBe(200);
      const spec = (await h.call({ method: 'GET', url: '/openapi.json', token: null })).json;
      expect(spec.paths['/metrics'].get.security).toEqual([]);
    } finally {
      await h.app.close();
    }
  });

  it('throttles failed authentication per address with 429 FL_ERR_AUTH_THROTTLED, never refusing a valid token', async () => {
    const h = await adminApp({ authRateLimit: { max: 5, timeWindowMs: 60_000 } });
    try {
      // Valid requests do not count.
      for (let i = 0; i < 10; i++) expect((await h.call({ method: 'GET', url: '/api/v1/tasks' })).status).toBe(200);
      const codes: number[] = [];
      for (let i = 0; i < 8; i++) codes.push((await h.call({ method: 'GET', url: '/api/v1/tasks', token: 'wrong' })).status);
      expect(codes.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
      expect(codes.slice(5)).toEqual([429, 429, 429]);
      const limited = await h.call({ method: 'GET', url: '/api/v1/tasks', token: 'wrong' });
      expect(limited.json.error.code).toBe('FL_ERR_AUTH_THROTTLED');
      expect(limited.json.error.details.retryAfterSeconds).toBeGreaterThan(0);
      // Others' failures from the same address never lock out a valid credential.
      expect((await h.call({ method: 'GET', url: '/api/v1/tasks' })).status).toBe(200);
      // Another address is not affected.
      const other = await h.app.inject({ method: 'GET', url: '/api/v1/tasks', remoteAddress: '10.9.8.7', headers: { authorization: 'Bearer wrong' } });
      expect(other.statusCode).toBe(401);
      // Without trustProxy, X-Forwarded-For is ignored: the peer address is still over its budget.
      const forged = await h.call({ method: 'GET', url: '/api/v1/tasks', token: 'wrong', headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(forged.status).toBe(429);
    } finally {
      await h.app.close();
    }
  });

  it('with trustProxy, throttles the client named by X-Forwarded-For, not the proxy', async () => {
    const h = await adminApp({ authRateLimit: { max: 2, timeWindowMs: 60_000 }, trustProxy: true });
    try {
      const from = (ip: string) => h.call({ method: 'GET', url: '/api/v1/tasks', token: 'wrong', headers: { 'x-forwarded-for': ip } });
      expect([(await from('203.0.113.1')).status, (await from('203.0.113.1')).status, (await from('203.0.113.1')).status]).toEqual([401, 401, 429]);
      // Another client behind the same proxy is not locked out.
      expect((await from('203.0.113.2')).status).toBe(401);
    } finally {
      await h.app.close();
    }
  });
});
