import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPreset, specOf } from '@flotilla/model';
import { MemoryBlobStore, MemoryStore, type FlotillaApp } from '@flotilla/server';
import { httpCall } from '../helpers/http-call.js';
import { startServer } from '../helpers/server.js';

const ADMIN = 'admin-token-for-scope-tests-0123456789';
const DEVICE = 'device-token-for-scope-tests-0123456789';
const tensor = { name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] };

/**
 * Credentials reach only what they are meant for, over real HTTP: a device token reads its own
 * task's model and nothing else (other tasks' artifacts, alias history, listings); inference and
 * bandit feedback need an `inference` token (optionally scoped to endpoints), and each deployment
 * says who may send it feedback.
 */
describe('device tokens stay in their task; inference needs an inference credential', () => {
  let app: FlotillaApp;
  let url: string;
  let device1: string;
  const call = (method: string, path: string, token: string | null, body?: unknown) => httpCall(url, method, path, token, body);
  const codeOf = (r: { json: any }) => r.json?.error?.code ?? r.json?.code;
  const newToken = async (body: Record<string, unknown>) => {
    const res = await call('POST', '/api/v1/tokens', ADMIN, body);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    return res.json as { id: string; token: string; endpoints: string[] | null };
  };

  beforeAll(async () => {
    ({ app, url } = await startServer({ store: new MemoryStore(), blobs: new MemoryBlobStore(), adminToken: ADMIN, deviceToken: DEVICE, processMetrics: false, authRateLimit: false }));
    for (const id of ['t1', 't2']) expect((await call('POST', '/api/v1/tasks', ADMIN, { id, preset: 'tiny-mlp', plan: { clientsPerRound: 2 } })).status).toBe(201);
    const preset = buildPreset('tiny-mlp');
    const { spec, weights } = specOf(preset.model, preset.numClasses);
    preset.model.dispose();
    for (let i = 0; i < 2; i++) await app.flotilla.registry.publish({ model: 'served', spec, weights: weights.map((x) => x * (1 + i)) });
    device1 = (await newToken({ role: 'device', taskId: 't1' })).token;
    const bandit = await call('POST', '/api/v1/deployments', ADMIN, { name: 'bandit', model: 'served', routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: '2' }] } });
    expect(bandit.status, JSON.stringify(bandit.json)).toBe(201);
  });
  afterAll(async () => {
    await app?.close();
  });

  it("reads its own task's model, and gets 403 FL_ERR_AUTH_OUT_OF_SCOPE for every other model", async () => {
    expect((await call('GET', '/api/v1/models/t1/versions/1/model.json', device1)).status).toBe(200);
    expect((await call('GET', '/api/v1/models/t1/versions/1/weights.bin', device1)).status).toBe(200);
    expect((await call('GET', '/api/v1/models/t1/versions/latest/model.json', device1)).status).toBe(200);
    const mine = await call('GET', '/api/v1/models', device1);
    expect(mine.json.models.map((m: { name: string }) => m.name)).toEqual(['t1']);
    for (const path of [
      '/api/v1/models/t2',
      '/api/v1/models/t2/versions',
      '/api/v1/models/t2/versions/1',
      '/api/v1/models/t2/versions/1/model.json',
      '/api/v1/models/t2/versions/1/weights.bin',
      '/api/v1/models/t2/versions/1/artifacts/weights',
      '/api/v1/models/t2/aliases',
      '/api/v1/models/t2/aliases/latest/history',
      '/api/v1/models/served/versions/1/weights.bin',
      '/api/v1/models/nope/versions/1/model.json',
    ]) {
      const res = await call('GET', path, device1);
      expect(res.status, path).toBe(403);
      expect(codeOf(res), path).toBe('FL_ERR_AUTH_OUT_OF_SCOPE');
    }
    // The bootstrap device token is valid for every task, so it reads every task's model.
    expect((await call('GET', '/api/v1/models/t2/versions/1/model.json', DEVICE)).status).toBe(200);
  });

  it('refuses inference and bandit feedback to device tokens, and serves them to inference tokens', async () => {
    for (const token of [device1, DEVICE]) {
      for (const [method, path, body] of [
        ['POST', '/v2/models/served/infer', { inputs: [tensor] }],
        ['POST', '/v2/models/bandit/infer', { inputs: [tensor] }],
        ['GET', '/v2/models/served', undefined],
        ['POST', '/v1/models/served:predict', { instances: [tensor.data] }],
        ['POST', '/api/v1/deployments/bandit/feedback', { requestId: 'x', reward: 1 }],
      ] as const) {
        const res = await call(method, path, token, body);
        expect(res.status, `${path} ${token === DEVICE ? 'bootstrap' : 'scoped'} device`).toBe(403);
        expect(codeOf(res)).toBe('FL_ERR_AUTH_FORBIDDEN');
      }
    }
    const inf = await newToken({ role: 'inference', name: 'web-frontend' });
    expect(inf.endpoints).toBeNull();
    const served = await call('POST', '/v2/models/bandit/infer', inf.token, { id: 'req-1', inputs: [tensor] });
    expect(served.status).toBe(200);
    expect((await call('POST', '/v1/models/served:predict', inf.token, { instances: [tensor.data] })).status).toBe(200);
    expect((await call('POST', '/api/v1/deployments/bandit/feedback', inf.token, { requestId: 'req-1', reward: 1 })).status).toBe(200);
    // It is no registry or admin credential.
    expect((await call('GET', '/api/v1/models/served/versions/1/weights.bin', inf.token)).status).toBe(403);
    expect((await call('GET', '/api/v1/tasks', inf.token)).status).toBe(403);
    expect((await call('POST', '/api/v1/deployments', inf.token, { name: 'x', model: 'served', routing: { mode: 'split', targets: [{ ref: '1' }] } })).status).toBe(403);
  });

  it('scopes inference tokens to the endpoints they name', async () => {
    const scoped = await newToken({ role: 'inference', endpoints: ['bandit'] });
    expect(scoped.endpoints).toEqual(['bandit']);
    expect((await call('POST', '/v2/models/bandit/infer', scoped.token, { inputs: [tensor] })).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/v2/models/served/infer', { inputs: [tensor] }],
      ['POST', '/v2/models/served/versions/1/infer', { inputs: [tensor] }],
      ['GET', '/v2/models/served/ready', undefined],
      ['POST', '/v1/models/served:predict', { instances: [tensor.data] }],
      ['GET', '/v1/models/served', undefined],
    ] as const) {
      const res = await call(method, path, scoped.token, body);
      expect(res.status, path).toBe(403);
      expect(codeOf(res), path).toBe('FL_ERR_AUTH_OUT_OF_SCOPE');
    }
    // Endpoint scopes belong to inference tokens, and name endpoints the API could create.
    expect((await call('POST', '/api/v1/tokens', ADMIN, { role: 'viewer', endpoints: ['bandit'] })).status).toBe(400);
    expect((await call('POST', '/api/v1/tokens', ADMIN, { role: 'inference', endpoints: ['bad\nname'] })).status).toBe(400);
    expect((await call('POST', '/api/v1/tokens', ADMIN, { role: 'inference', taskId: 't1' })).status).toBe(400);
  });

  it('lets a deployment name the tokens that may send it feedback', async () => {
    const allowed = await newToken({ role: 'inference' });
    const other = await newToken({ role: 'inference' });
    const put = await call('PUT', '/api/v1/deployments/bandit', ADMIN, {
      model: 'served',
      routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: '2' }] },
      feedback: { allow: 'tokens', tokenIds: [allowed.id] },
    });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    expect(put.json.feedback).toEqual({ allow: 'tokens', tokenIds: [allowed.id] });
    for (const token of [allowed, other]) {
      expect((await call('POST', '/v2/models/bandit/infer', token.token, { id: `q-${token.id}`, inputs: [tensor] })).status).toBe(200);
    }
    const refused = await call('POST', '/api/v1/deployments/bandit/feedback', other.token, { requestId: `q-${other.id}`, reward: 1 });
    expect(refused.status).toBe(403);
    expect(codeOf(refused)).toBe('FL_ERR_AUTH_FORBIDDEN');
    expect((await call('POST', '/api/v1/deployments/bandit/feedback', allowed.token, { requestId: `q-${allowed.id}`, reward: 1 })).status).toBe(200);
    // The refused request's reward can still be given by an allowed credential: nothing was used up.
    expect((await call('POST', '/api/v1/deployments/bandit/feedback', ADMIN, { requestId: `q-${other.id}`, reward: 0 })).status).toBe(200);
    // 'admin': only admin tokens.
    await call('PUT', '/api/v1/deployments/bandit', ADMIN, { model: 'served', routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: '2' }] }, feedback: { allow: 'admin' } });
    expect((await call('POST', '/v2/models/bandit/infer', allowed.token, { id: 'q-admin-only', inputs: [tensor] })).status).toBe(200);
    expect((await call('POST', '/api/v1/deployments/bandit/feedback', allowed.token, { requestId: 'q-admin-only', reward: 1 })).status).toBe(403);
    // A token list names tokens, and only with allow 'tokens'.
    const bad = await call('PUT', '/api/v1/deployments/bandit', ADMIN, { model: 'served', routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: '2' }] }, feedback: { allow: 'admin', tokenIds: [allowed.id] } });
    expect(bad.status).toBe(400);
  });
});

describe('publicInference keeps inference open, and a deployment may still restrict feedback', () => {
  it('serves anonymous inference; feedback follows the deployment', async () => {
    const { app, url } = await startServer({ store: new MemoryStore(), blobs: new MemoryBlobStore(), adminToken: ADMIN, deviceToken: DEVICE, processMetrics: false, authRateLimit: false, publicInference: true });
    try {
      const preset = buildPreset('tiny-mlp');
      const { spec, weights } = specOf(preset.model, preset.numClasses);
      preset.model.dispose();
      for (let i = 0; i < 2; i++) await app.flotilla.registry.publish({ model: 'served', spec, weights: weights.map((x) => x * (1 + i)) });
      const post = (path: string, body: unknown, token?: string) =>
        fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
      const make = await post('/api/v1/deployments', { name: 'open', model: 'served', routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: '2' }] } }, ADMIN);
      expect(make.status).toBe(201);
      const closed = await post('/api/v1/deployments', { name: 'closed', model: 'served', routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: '2' }] }, feedback: { allow: 'admin' } }, ADMIN);
      expect(closed.status).toBe(201);
      for (const name of ['open', 'closed']) expect((await post(`/v2/models/${name}/infer`, { id: `r-${name}`, inputs: [tensor] })).status).toBe(200);
      expect((await post('/api/v1/deployments/open/feedback', { requestId: 'r-open', reward: 1 })).status).toBe(200);
      const anon = await post('/api/v1/deployments/closed/feedback', { requestId: 'r-closed', reward: 1 });
      expect(anon.status).toBe(401);
      expect(((await anon.json()) as any).error.code).toBe('FL_ERR_AUTH_REQUIRED');
      expect((await post('/api/v1/deployments/closed/feedback', { requestId: 'r-closed', reward: 1 }, DEVICE)).status).toBe(403);
      expect((await post('/api/v1/deployments/closed/feedback', { requestId: 'r-closed', reward: 1 }, ADMIN)).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});
