import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, rowsOf, servingApp, type ServingHarness } from '../serving/serving-helpers.js';
import { flakyProxy, getJson, infer, sendJson, spawnFlotilla, started, until, type Proc } from './edge-helpers.js';

/** sha256 of every file under `dir` (path -> digest): what "never writes" is checked against. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out[p] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/**
 * `flotilla serve --role serving` as real processes: readiness that flips only once the preloaded
 * model is loaded and warmed, inference with the coordinator's tokens, live alias moves, metrics
 * with the per-model queue depth, reports upstream; the shared-store mode never writes the store;
 * `--role coordinator` has no inference routes.
 */
describe('serving replicas', () => {
  let h: ServingHarness;
  let coord: string;
  let servingToken: string;
  let inferenceToken: string;
  const procs: Proc[] = [];
  const dirs: string[] = [];
  const spawn = (args: string[], env: Record<string, string> = {}) => {
    const p = spawnFlotilla(args, env);
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    h = await servingApp();
    await h.publishTiny('tiny', 2);
    coord = await h.app.listen({ port: 0, host: '127.0.0.1' });
    servingToken = (await sendJson('POST', `${coord}/api/v1/tokens`, { role: 'serving', name: 'replica' }, ADMIN)).json.token;
    inferenceToken = (await sendJson('POST', `${coord}/api/v1/tokens`, { role: 'inference', name: 'app' }, ADMIN)).json.token;
    await sendJson('PUT', `${coord}/api/v1/models/tiny/aliases/production`, { version: 1 }, ADMIN);
  });
  afterAll(async () => {
    for (const p of procs) await p.kill();
    await h.app.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('reports ready only after its preloaded model is loaded and warmed, then serves and follows the registry', async () => {
    const proxy = await flakyProxy(coord);
    try {
      proxy.mode = 'hold'; // artifact downloads wait: the replica listens but cannot be ready
      const r = await started(spawn(['serve', '--role', 'serving', '--registry-url', proxy.url, '--preload', 'tiny@production', '--port', '0', '--sync-interval-ms', '200', '--report-interval-ms', '200', '--log-level', 'warn'], { FLOTILLA_REGISTRY_TOKEN: servingToken }));
      expect((await getJson(`${r.url}/healthz`)).status).toBe(200);
      await until(async () => proxy.requests.some((q) => q.includes('/artifacts/')), 'the replica to ask for an artifact');
      const before = await getJson(`${r.url}/readyz`);
      expect(before.status).toBe(503);
      expect(before.json.status).toBe('not ready');
      expect((await getJson(`${r.url}/v2/health/ready`)).status).toBe(503);
      proxy.mode = 'up';
      await until(async () => (await getJson(`${r.url}/readyz`)).status === 200, '/readyz to flip');
      // The moment it is ready, the preloaded version is loaded and warmed.
      const ready = (await getJson(`${r.url}/readyz`)).json;
      expect(ready.preload).toEqual([expect.objectContaining({ model: 'tiny', ref: 'production', version: 1 })]);
      expect(ready.preload[0].coldStartMs).toBeGreaterThan(0);
      const line = JSON.parse((await r.waitFor(/flotilla ready (.*)/))[1]);
      expect(line.preload[0].model).toBe('tiny');

      // Callers use the coordinator's inference tokens (introspected); no token is refused.
      expect((await infer(r.url!, 'tiny', rowsOf(1))).status).toBe(401);
      const a = await infer(r.url!, 'tiny', rowsOf(3), { token: inferenceToken, ref: 'production' });
      expect(a.status).toBe(200);
      expect(a.version).toBe('1');
      expect(a.data).toEqual((await infer(coord, 'tiny', rowsOf(3), { token: ADMIN, ref: '1' })).data);
      expect((await infer(r.url!, 'tiny', rowsOf(1), { token: inferenceToken })).version).toBe('2');

      // An alias moved on the coordinator reaches the replica.
      await sendJson('PUT', `${coord}/api/v1/models/tiny/aliases/production`, { version: 2 }, ADMIN);
      await until(async () => (await infer(r.url!, 'tiny', rowsOf(1), { token: inferenceToken, ref: 'production' })).version === '2', 'production -> v2 on the replica');

      // No admin surface: deployments and aliases are changed on coordinators only.
      expect((await sendJson('PUT', `${r.url}/api/v1/models/tiny/aliases/production`, { version: 1 }, inferenceToken)).status).toBe(404);

      const metrics = await fetch(`${r.url}/metrics`, { headers: { authorization: `Bearer ${inferenceToken}` } });
      expect(metrics.status).toBe(403);
      const text = await (await fetch(`${coord}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
      expect(text).toContain('flotilla_serving_queue_depth');
      const viewer = (await sendJson('POST', `${coord}/api/v1/tokens`, { role: 'viewer' }, ADMIN)).json.token;
      const replicaMetrics = await (await fetch(`${r.url}/metrics`, { headers: { authorization: `Bearer ${viewer}` } })).text();
      expect(replicaMetrics).toMatch(/flotilla_serving_queue_depth\{model="tiny",version="2",variant="float32"\} 0/);
      expect(replicaMetrics).toMatch(/flotilla_serving_requests_total\{model="tiny",version="1",variant="float32"\} [1-9]/);

      const report = await until(async () => (await getJson(`${coord}/api/v1/edge/reports`, ADMIN)).json.reports.find((x: any) => x.kind === 'replica' && x.models.length > 0), 'a replica report');
      expect(report.models.map((m: any) => m.model)).toContain('tiny');
    } finally {
      await proxy.close();
    }
  });

  it('follows an alias move through the live channel, long before its next poll', async () => {
    await sendJson('PUT', `${coord}/api/v1/models/tiny/aliases/canary`, { version: 1 }, ADMIN).then((x) => expect(x.status).toBe(200));
    const s = await started(spawn(['serve', '--role', 'serving', '--registry-url', coord, '--preload', 'tiny@canary', '--models', 'tiny', '--port', '0', '--sync-interval-ms', '3600000', '--report-interval-ms', '0', '--public-metrics', '--log-level', 'warn'], { FLOTILLA_REGISTRY_TOKEN: servingToken }));
    await s.waitFor(/flotilla ready/);
    await until(async () => (await getJson(`${s.url}/api/v1/edge/status`)).json.live === true, 'the live channel to connect');
    expect((await infer(s.url!, 'tiny', rowsOf(1), { token: inferenceToken, ref: 'canary' })).version).toBe('1');
    await sendJson('PUT', `${coord}/api/v1/models/tiny/aliases/canary`, { version: 2 }, ADMIN);
    await until(async () => (await infer(s.url!, 'tiny', rowsOf(1), { token: inferenceToken, ref: 'canary' })).version === '2', 'canary -> v2 through the live channel (the next poll is an hour away)');
  });

  it('exits with FL_ERR_AUTH_INVALID_TOKEN when its registry credential is wrong', async () => {
    const p = spawn(['serve', '--role', 'serving', '--registry-url', coord, '--port', '0'], { FLOTILLA_REGISTRY_TOKEN: 'flt.AAAAAAAAAAAA.' + 'A'.repeat(43) });
    expect(await p.exited).toBe(1);
    expect(p.err()).toContain('FL_ERR_AUTH_INVALID_TOKEN');
  });

  it('serves from the shared store opened read-only and never writes it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-shared-'));
    dirs.push(dataDir);
    const c = await servingApp({ store: undefined, blobs: undefined, dataDir });
    await c.publishTiny('shared', 2);
    const token = (await c.call({ method: 'POST', url: '/api/v1/tokens', json: { role: 'inference' } })).json.token;
    await c.app.close();
    const before = snapshot(dataDir);
    const r = await started(spawn(['serve', '--role', 'serving', '--data-dir', dataDir, '--preload', 'shared', '--port', '0', '--log-level', 'warn']));
    await r.waitFor(/flotilla ready/);
    for (let i = 0; i < 20; i++) expect((await infer(r.url!, 'shared', rowsOf(2, i), { token })).version).toBe('2');
    expect((await infer(r.url!, 'shared', rowsOf(1), { token: 'flt.AAAAAAAAAAAA.' + 'A'.repeat(43) })).status).toBe(401);
    await r.kill('SIGTERM');
    // The database and every blob are byte-identical. A SQLite reader of a WAL database may leave
    // the WAL index (-shm) and an empty -wal behind: no record is in them.
    const after = snapshot(dataDir);
    const EMPTY = createHash('sha256').update('').digest('hex');
    for (const [p, digest] of Object.entries(after)) {
      if (p.endsWith('-wal')) expect(digest).toBe(EMPTY);
      if (p.endsWith('-wal') || p.endsWith('-shm')) delete after[p];
    }
    expect(after).toEqual(before);
  });

  it('--role coordinator serves training and the admin API without the inference routes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-coord-'));
    dirs.push(dataDir);
    const c = await started(spawn(['serve', '--role', 'coordinator', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], { FLOTILLA_ADMIN_TOKEN: ADMIN }));
    expect((await getJson(`${c.url}/readyz`)).status).toBe(200);
    expect((await getJson(`${c.url}/api/v1/tasks`, ADMIN)).status).toBe(200);
    expect((await getJson(`${c.url}/v2/health/ready`)).status).toBe(404);
    expect((await sendJson('POST', `${c.url}/v1/models/tiny:predict`, { instances: [] }, ADMIN)).status).toBe(404);
    const bad = spawn(['serve', '--role', 'trainer', '--port', '0']);
    expect(await bad.exited).toBe(2);
    expect(bad.err()).toContain('FL_ERR_CONFIG_INVALID');
  });
});
