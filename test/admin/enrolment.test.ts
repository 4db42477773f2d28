import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, MemoryBlobStore, MemoryStore, type FlotillaApp } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { ADMIN, DEVICE } from './admin-helpers.js';

async function waitFor(pred: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Enrolment tokens end to end: created by the admin, presented at hello, scoped, expiring, revocable. */
describe('enrolment tokens and revocation', () => {
  let app: FlotillaApp;
  let url: string;
  let store: MemoryStore;
  const devices: RawDevice[] = [];
  const api = async (method: string, path: string, body?: unknown, token = ADMIN) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, json: (await res.json()) as any };
  };
  const dev = () => {
    const d = new RawDevice(url);
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    store = new MemoryStore();
    app = await buildApp({ store, blobs: new MemoryBlobStore(), adminToken: ADMIN, deviceToken: DEVICE, processMetrics: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address() as { port: number };
    url = `http://127.0.0.1:${addr.port}`;
    for (const id of ['t1', 't2']) await app.flotilla.coordinator.createTask({ id, preset: 'tiny-mlp', plan: { clientsPerRound: 5 } });
  });
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await app.close();
  });

  it('creates tokens whose secret is shown once and stored only as its sha256', async () => {
    const created = await api('POST', '/api/v1/tokens', { role: 'device', taskId: 't1', name: 'fleet A', ttlSeconds: 3600 });
    expect(created.status).toBe(201);
    expect(created.json.token).toMatch(/^flt\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{43}$/);
    expect(created.json).toMatchObject({ role: 'device', taskId: 't1', name: 'fleet A', revoked: false, createdBy: 'bootstrap-admin' });
    expect(created.json.expiresAt).toBeGreaterThan(Date.now());
    const rec = (await store.getToken(created.json.id))!;
    expect(rec.hash).toBe(createHash('sha256').update(created.json.token).digest('hex'));
    expect(JSON.stringify(await store.listTokens())).not.toContain(created.json.token.split('.')[2]);
    const listed = await api('GET', '/api/v1/tokens');
    const mine = listed.json.tokens.find((t: any) => t.id === created.json.id);
    expect(mine).toBeDefined();
    expect(mine.token).toBeUndefined();
    expect(mine.hash).toBeUndefined();
    expect((await api('GET', `/api/v1/tokens/${created.json.id}`)).json.id).toBe(created.json.id);
    expect((await api('GET', '/api/v1/tokens/nope')).json.error.code).toBe('FL_ERR_TOKEN_NOT_FOUND');
  });

  it('validates token creation: device tokens need an existing task, others take none', async () => {
    expect((await api('POST', '/api/v1/tokens', { role: 'device' })).status).toBe(400);
    expect((await api('POST', '/api/v1/tokens', { role: 'device', taskId: 'missing' })).json.error.code).toBe('FL_ERR_TASK_NOT_FOUND');
    expect((await api('POST', '/api/v1/tokens', { role: 'viewer', taskId: 't1' })).status).toBe(400);
    expect((await api('POST', '/api/v1/tokens', { role: 'root' })).status).toBe(400);
    expect((await api('POST', '/api/v1/tokens', { role: 'viewer', extra: 1 })).status).toBe(400);
    expect((await api('POST', '/api/v1/tokens', { role: 'viewer', ttlSeconds: 0 })).status).toBe(400);
  });

  it('gives viewers read-only access and lets admins create further admins', async () => {
    const viewer = (await api('POST', '/api/v1/tokens', { role: 'viewer' })).json.token;
    expect((await api('GET', '/api/v1/tasks', undefined, viewer)).status).toBe(200);
    expect((await api('POST', '/api/v1/tasks/t1/start', undefined, viewer)).status).toBe(403);
    expect((await api('GET', '/api/v1/tokens', undefined, viewer)).status).toBe(403);
    const admin2 = (await api('POST', '/api/v1/tokens', { role: 'admin', name: 'ops' })).json;
    const made = await api('POST', '/api/v1/tokens', { role: 'viewer' }, admin2.token);
    expect(made.status).toBe(201);
    expect(made.json.createdBy).toBe(`token:${admin2.id}`);
  });

  it('admits a device with a token scoped to its task only, and refuses admin and viewer tokens at hello', async () => {
    const t = (await api('POST', '/api/v1/tokens', { role: 'device', taskId: 't1' })).json.token;
    const viewer = (await api('POST', '/api/v1/tokens', { role: 'viewer' })).json.token;
    const d = dev();
    // A valid credential that may not join (another task's device token, an admin or viewer token)
    // gets exactly the answer a wrong token gets: the handshake is no token oracle.
    const wrong = await d.hello(t.slice(0, -1) + (t.endsWith('A') ? 'B' : 'A'), 't1');
    expect(wrong.error.code).toBe('FL_ERR_AUTH_INVALID_TOKEN');
    for (const [tok, task] of [[t, 't2'], [ADMIN, 't1'], [viewer, 't1']]) expect((await d.hello(tok, task)).error).toEqual(wrong.error);
    expect((await d.hello(t, 't1')).ok).toBe(true);
    // The bootstrap device token still works for every task (simulator, existing tests).
    expect((await dev().hello(DEVICE, 't2')).ok).toBe(true);
  });

  it('refuses an expired token', async () => {
    const { record, token } = await app.flotilla.authenticator.createToken({ role: 'device', taskId: 't1', expiresAt: Date.now() - 1, createdBy: 'test' });
    expect(record.expiresAt).toBeDefined();
    expect((await dev().hello(token, 't1')).error.code).toBe('FL_ERR_AUTH_INVALID_TOKEN');
    const v = await app.flotilla.authenticator.createToken({ role: 'viewer', expiresAt: Date.now() - 1, createdBy: 'test' });
    expect((await api('GET', '/api/v1/tasks', undefined, v.token)).status).toBe(401);
  });

  it('revoking a token disconnects the sessions opened with it and refuses it afterwards', async () => {
    const a = (await api('POST', '/api/v1/tokens', { role: 'device', taskId: 't1' })).json;
    const b = (await api('POST', '/api/v1/tokens', { role: 'device', taskId: 't1' })).json;
    const [d1, d2, d3] = [dev(), dev(), dev()];
    expect((await d1.hello(a.token, 't1')).ok).toBe(true);
    expect((await d2.hello(a.token, 't1')).ok).toBe(true);
    expect((await d3.hello(b.token, 't1')).ok).toBe(true);
    const res = await api('POST', `/api/v1/tokens/${a.id}/revoke`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: a.id, revoked: true, disconnectedSessions: 2 });
    await waitFor(() => !d1.socket.connected && !d2.socket.connected);
    expect(d3.socket.connected).toBe(true);
    expect((await dev().hello(a.token, 't1')).error.code).toBe('FL_ERR_AUTH_INVALID_TOKEN');
    // Idempotent.
    expect((await api('POST', `/api/v1/tokens/${a.id}/revoke`)).json).toMatchObject({ revoked: true, disconnectedSessions: 0 });
    expect((await api('POST', '/api/v1/tokens/nope/revoke')).json.error.code).toBe('FL_ERR_TOKEN_NOT_FOUND');
  });

  it('revoking a client disconnects it and refuses its device id at hello', async () => {
    const d = dev();
    expect((await d.hello(DEVICE, 't1', { deviceId: 'phone-7' })).ok).toBe(true);
    const res = await api('POST', '/api/v1/clients/phone-7/revoke');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ id: 'phone-7', revoked: true, state: 'revoked' });
    await waitFor(() => !d.socket.connected);
    expect((await dev().hello(DEVICE, 't1', { deviceId: 'phone-7' })).error.code).toBe('FL_ERR_CLIENT_REVOKED');
    expect((await api('POST', '/api/v1/clients/nobody/revoke')).json.error.code).toBe('FL_ERR_CLIENT_NOT_FOUND');
  });
});
