import { afterAll, describe, expect, it } from 'vitest';
import type { AppOptions, FlotillaApp, RoundRecord } from '@flotilla/server';
import { openStorage } from '../../server/src/store/open-storage.js';
import { RawDevice } from '../helpers/raw-device.js';
import { sendReport } from '../helpers/raw-round.js';
import { nextEvent, startServer } from '../helpers/server.js';
import { tempDir } from '../store/temp-dir.js';

/**
 * Issue 11 item 5, Sybil devices: one credential may enrol only so many device ids; records of
 * devices gone for longer than the retention period are deleted; and one report's weight is
 * capped by the plan's maxExamplesPerReport. Over real sockets and HTTP, on SQLite in a data dir.
 */
const ADMIN = 'admin-token-for-sybil-tests-0001';
const DEVICE = 'device-token-for-sybil-tests-001';
const DAY = 86_400_000;
const dirs: Array<() => Promise<void>> = [];
const apps: FlotillaApp[] = [];
const devices: RawDevice[] = [];
afterAll(async () => {
  devices.forEach((d) => d.close());
  for (const a of apps) await a.close().catch(() => undefined);
  for (const rm of dirs) await rm();
});

async function server(dataDir: string, opts: AppOptions = {}) {
  const s = await startServer({ dataDir, adminToken: ADMIN, deviceToken: DEVICE, authRateLimit: false, ...opts });
  apps.push(s.app);
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(s.url + path, { method, headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, json: (await res.json()) as any };
  };
  const hello = async (token: string, deviceId: string) => {
    const d = new RawDevice(s.url);
    devices.push(d);
    const ack = await d.hello(token, 'sy', { deviceId });
    d.close();
    return ack;
  };
  return { ...s, api, hello };
}

async function dir(): Promise<string> {
  const t = await tempDir('flotilla-sybil-');
  dirs.push(t.remove);
  return t.dir;
}

describe('device cap per credential', () => {
  it('refuses a new device id past the cap with a coded error, per token, and remembers across a restart', async () => {
    const dataDir = await dir();
    let s = await server(dataDir, { maxDevicesPerToken: 3 });
    await s.app.flotilla.coordinator.createTask({ id: 'sy', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    const issued = (await s.api('POST', '/api/v1/tokens', { role: 'device', taskId: 'sy' })).json.token as string;
    for (const id of ['a1', 'a2', 'a3']) expect((await s.hello(issued, id)).ok, id).toBe(true);
    const refused = await s.hello(issued, 'a4');
    expect(refused.ok).toBe(false);
    expect(refused.error.code).toBe('FL_ERR_CLIENT_CAP_REACHED');
    expect(refused.error.details).toMatchObject({ limit: 3 });
    expect((await s.hello(issued, 'a2')).ok).toBe(true); // a device it already enrolled comes back
    // Other credentials have their own count.
    for (const id of ['b1', 'b2', 'b3']) expect((await s.hello(DEVICE, id)).ok, id).toBe(true);
    expect((await s.hello(DEVICE, 'b4')).error.code).toBe('FL_ERR_CLIENT_CAP_REACHED');
    // Server-assigned ids count too.
    const issued2 = (await s.api('POST', '/api/v1/tokens', { role: 'device', taskId: 'sy' })).json.token as string;
    const anon = async () => {
      const d = new RawDevice(s.url);
      devices.push(d);
      const ack = await d.hello(issued2, 'sy');
      d.close();
      return ack;
    };
    for (let i = 0; i < 3; i++) expect((await anon()).ok).toBe(true);
    expect((await anon()).error.code).toBe('FL_ERR_CLIENT_CAP_REACHED');
    const listed = await s.api('GET', '/api/v1/clients?taskId=sy&limit=100');
    expect(listed.json.total).toBe(9);

    await s.app.close();
    s = await server(dataDir, { maxDevicesPerToken: 3 });
    expect((await s.hello(issued, 'a5')).error.code).toBe('FL_ERR_CLIENT_CAP_REACHED');
    expect((await s.hello(issued, 'a1')).ok).toBe(true);
    await s.app.close();
  });
});

describe('retention of client records', () => {
  it('deletes records of devices not seen for the retention period at start-up and periodically, keeping revoked ones', async () => {
    const dataDir = await dir();
    const now = Date.now();
    const rec = { taskId: 'sy', firstSeen: now - 100 * DAY, roundsJoined: 1, reportsAccepted: 1, reportsRejected: 0, revoked: false, tokenId: null };
    const seeded = await openStorage({ dataDir });
    await seeded.store.upsertClients([
      { ...rec, id: 'gone-40d', lastSeen: now - 40 * DAY },
      { ...rec, id: 'gone-31d', lastSeen: now - 31 * DAY },
      { ...rec, id: 'revoked-old', lastSeen: now - 90 * DAY, revoked: true },
      { ...rec, id: 'recent', lastSeen: now - 2 * DAY },
    ]);
    await seeded.close();

    const s = await server(dataDir, { clientRetention: { maxAgeMs: 30 * DAY, sweepIntervalMs: 200 } });
    const ids = async () => ((await s.api('GET', '/api/v1/clients?limit=100')).json.clients as Array<{ id: string }>).map((c) => c.id).sort();
    expect(await ids()).toEqual(['recent', 'revoked-old']);

    // A record that goes stale while the server runs is swept on a later tick.
    const swept = nextEvent<string[]>(s.app.flotilla.coordinator.events, 'clients:swept', (x) => x.includes('late'));
    await s.app.flotilla.store.upsertClients([{ ...rec, id: 'late', lastSeen: now - 35 * DAY }]);
    await swept;
    expect(await ids()).toEqual(['recent', 'revoked-old']);
    // And a device seen again is fresh: its record stays.
    await s.app.flotilla.coordinator.createTask({ id: 'sy', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    expect((await s.hello(DEVICE, 'recent')).ok).toBe(true);
    await nextEvent<string[]>(s.app.flotilla.coordinator.events, 'clients:swept');
    expect(await ids()).toEqual(['recent', 'revoked-old']);
  });
});

describe('maxExamplesPerReport', () => {
  it('clamps the weight a report claims, so one device cannot outweigh the round by claiming many examples', async () => {
    const s = await server(await dir());
    const co = s.app.flotilla.coordinator;
    await co.createTask({ id: 'sy', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, maxExamplesPerReport: 10, roundDeadlineMs: 60_000 } });
    const P = 195;
    const a = new RawDevice(s.url);
    const b = new RawDevice(s.url);
    devices.push(a, b);
    expect((await a.hello(DEVICE, 'sy', { deviceId: 'big-claim' })).ok).toBe(true);
    expect((await b.hello(DEVICE, 'sy', { deviceId: 'honest' })).ok).toBe(true);
    const runner = co.getRunner('sy');
    const before = Float32Array.from(runner.globalWeights);
    const closed = nextEvent<RoundRecord>(co.events, 'round');
    await co.startTask('sy');
    await a.instruction(1);
    await b.instruction(1);
    expect((await sendReport(a, 'sy', 1, new Float32Array(P).fill(1), { numExamples: 1_000_000_000 })).ok).toBe(true);
    expect((await sendReport(b, 'sy', 1, new Float32Array(P).fill(0), { numExamples: 10 })).ok).toBe(true);
    expect((await closed).state).toBe('done');
    // Both count as 10 examples: the mean moves every weight by 0.5, not by ~1.
    const after = runner.globalWeights;
    for (let i = 0; i < P; i++) expect(after[i] - before[i]).toBeCloseTo(0.5, 5);
    expect(runner.record.plan.maxExamplesPerReport).toBe(10);
    const bad = await s.api('POST', '/api/v1/tasks', { id: 'sy2', preset: 'tiny-mlp', plan: { clientsPerRound: 1, maxExamplesPerReport: 0 } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('FL_ERR_TASK_INVALID_SPEC');
  });
});
