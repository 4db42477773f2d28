import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampledId } from '../../server/src/serving/payload-log.js';
import { tempDir } from '../store/temp-dir.js';
import { DEVICE, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

const tensor = (rows: number[][]) => ({ name: 'hidden_input', shape: [rows.length, 8], datatype: 'FP32', data: rows.flat() });

describe('payload log and drift', () => {
  let h: ServingHarness;
  beforeAll(async () => {
    h = await servingApp({ serving: { payloadSampleRate: 0.5, payloadCapPerModel: 20 } });
    await h.publishTiny('tiny', 2);
  });
  afterAll(async () => {
    await h.app.close();
  });
  const infer = (id: string, rows: number[][], path = '/v2/models/tiny/infer') => h.call({ method: 'POST', url: path, json: { id, inputs: [tensor(rows)] } });

  it('logs exactly the request ids the hash samples, newest first, capped per model, paged', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `req-${i}`);
    for (const id of ids) expect((await infer(id, rowsOf(1, 1))).status).toBe(200);
    const want = ids.filter((id) => sampledId(id, 0.5));
    expect(want.length).toBeGreaterThan(5);
    const page = (await h.call({ method: 'GET', url: '/api/v1/models/tiny/payloads?limit=100' })).json;
    expect(page.sampling).toEqual({ rate: 0.5, capPerModel: 20 });
    expect(page.payloads.map((p: { requestId: string }) => p.requestId)).toEqual([...want].reverse().slice(0, 20));
    expect(page.total).toBe(Math.min(20, want.length));
    const p0 = page.payloads[0];
    expect(p0).toMatchObject({ model: 'tiny', version: 2, input: { shape: [1, 8] }, output: { shape: [1, 3] } });
    expect(p0.input.data).toHaveLength(8);
    expect(p0.output.data).toHaveLength(3);
    const two = (await h.call({ method: 'GET', url: '/api/v1/models/tiny/payloads?limit=2&offset=1' })).json;
    expect(two.payloads.map((p: { requestId: string }) => p.requestId)).toEqual(page.payloads.slice(1, 3).map((p: { requestId: string }) => p.requestId));
    expect(two.nextOffset).toBe(3);
    // The same id is always in or always out.
    const again = ids.find((id) => !sampledId(id, 0.5))!;
    await infer(again, rowsOf(1));
    const after = (await h.call({ method: 'GET', url: '/api/v1/models/tiny/payloads?limit=100' })).json;
    expect(after.payloads.some((p: { requestId: string }) => p.requestId === again)).toBe(false);
    expect((await h.call({ method: 'GET', url: '/api/v1/models/nope/payloads' })).json.error.code).toBe('FL_ERR_MODEL_NOT_FOUND');
    expect((await h.call({ method: 'GET', url: '/api/v1/models/tiny/payloads?version=1' })).json.total).toBe(0);
  });

  it('logs at most payloadMaxRows rows of a large request and notes how many it had', async () => {
    const id = Array.from({ length: 200 }, (_, i) => `big-${i}`).find((x) => sampledId(x, 0.5))!;
    expect((await infer(id, rowsOf(40, 9))).status).toBe(200);
    const p = (await h.call({ method: 'GET', url: '/api/v1/models/tiny/payloads?limit=1' })).json.payloads[0];
    expect(p.requestId).toBe(id);
    expect(p.truncatedFrom).toBe(40);
    expect(p.input.shape).toEqual([32, 8]);
    expect(p.input.data).toHaveLength(32 * 8);
    expect(p.output.shape).toEqual([32, 3]);
  });

  it('accepts a reference recorded at publish and validates its width', async () => {
    const put = await h.call({ method: 'PUT', url: '/api/v1/models/tiny/versions/2/input-stats', json: { count: 1000, mean: new Array(8).fill(0), variance: new Array(8).fill(1) } });
    expect(put.status).toBe(200);
    const d = (await h.call({ method: 'GET', url: '/api/v1/models/tiny/drift' })).json;
    expect(d.reference).toMatchObject({ source: 'publish', count: 1000 });
    expect(d.version).toBe(2);
    const bad = await h.call({ method: 'PUT', url: '/api/v1/models/tiny/versions/2/input-stats', json: { count: 10, mean: [0], variance: [1] } });
    expect(bad.status).toBe(400);
    expect((await h.call({ method: 'PUT', url: '/api/v1/models/tiny/versions/9/input-stats', json: { count: 10, mean: [0], variance: [1] } })).status).toBe(404);
  });
});

describe('drift reference', () => {
  let h: ServingHarness;
  beforeAll(async () => {
    h = await servingApp({ serving: { payloadSampleRate: 0.5, payloadCapPerModel: 1000 } });
    await h.publishTiny('tiny', 2);
  });
  afterAll(async () => {
    await h.app.close();
  });
  const infer = (id: string, rows: number[][], path = '/v2/models/tiny/infer') => h.call({ method: 'POST', url: path, json: { id, inputs: [tensor(rows)] } });

  it('never takes the drift reference from callers: a large first request sets nothing; an operator confirms a window', async () => {
    const v1 = '/v2/models/tiny/versions/1/infer';
    const drift = async () => (await h.call({ method: 'GET', url: '/api/v1/models/tiny/drift?version=1' })).json;
    // The first caller of version 1 sends 1,024 extreme-but-valid rows (sampled into the log).
    const poison = Array.from({ length: 1000 }, (_, i) => `poison-${i}`).find((id) => sampledId(id, 0.5))!;
    const big = Array.from({ length: 1024 }, () => [1e30, -1e30, 1e30, -1e30, 1e30, -1e30, 1e30, -1e30]);
    expect((await infer(poison, big, v1)).status).toBe(200);
    for (let i = 0; i < 40; i++) await infer(`same-${i}`, rowsOf(10, 3), v1);
    const none = await drift();
    expect(none.reference).toBeNull();
    expect(none.summary.status).toBe('insufficient-data');
    // Confirming a window that holds only the poisoner's request is refused (too few requests) and records nothing.
    const afterPoison = (await h.call({ method: 'GET', url: '/api/v1/models/tiny/payloads?version=1&limit=500' })).json.payloads.find((p: { requestId: string }) => p.requestId === poison).at;
    const tooFew = await h.call({ method: 'POST', url: '/api/v1/models/tiny/versions/1/input-stats/confirm', json: { until: afterPoison, minRequests: 2 } });
    expect(tooFew.status).toBe(409);
    expect(tooFew.json.error.code).toBe('FL_ERR_SERVING_REFERENCE_WINDOW');
    expect((await drift()).reference).toBeNull();
    // Only admins confirm.
    expect((await h.call({ method: 'POST', url: '/api/v1/models/tiny/versions/1/input-stats/confirm', json: {}, token: DEVICE })).status).toBe(403);
    // A dry run shows the statistics; the confirmed window excludes the poisoned request by time.
    const window = { since: afterPoison + 1, minRequests: 5 };
    const dry = (await h.call({ method: 'POST', url: '/api/v1/models/tiny/versions/1/input-stats/confirm', json: { ...window, dryRun: true } })).json;
    expect(dry).toMatchObject({ recorded: false, source: 'confirmed-window' });
    expect((await drift()).reference).toBeNull();
    const ok = await h.call({ method: 'POST', url: '/api/v1/models/tiny/versions/1/input-stats/confirm', json: window });
    expect(ok.status).toBe(200);
    expect(ok.json.requests).toBe(dry.requests);
    expect(ok.json.count).toBe(ok.json.requests * 4); // 4 rows per request by default
    expect(ok.json.mean.every((m: number) => Math.abs(m) < 2)).toBe(true);
    const quiet = await drift();
    expect(quiet.reference).toMatchObject({ source: 'confirmed-window', count: ok.json.count });
    // Even a window that includes the big request weighs it as 4 rows among many.
    const all = (await h.call({ method: 'POST', url: '/api/v1/models/tiny/versions/1/input-stats/confirm', json: { dryRun: true, rowsPerRequest: 1 } })).json;
    expect(all.count).toBe(all.requests);
  });

  it('flags shifted inputs against a confirmed reference', async () => {
    const v2 = '/v2/models/tiny/versions/2/infer';
    for (let i = 0; i < 40; i++) await infer(`base-${i}`, rowsOf(10, i), v2);
    expect((await h.call({ method: 'POST', url: '/api/v1/models/tiny/versions/2/input-stats/confirm', json: { minRequests: 5 } })).status).toBe(200);
    expect((await h.call({ method: 'GET', url: '/api/v1/models/tiny/drift?version=2' })).json.summary.status).toBe('ok');
    for (let i = 0; i < 60; i++) await infer(`shift-${i}`, rowsOf(10, i).map((r) => r.map((x, j) => (j < 4 ? x + 3 : x))), v2);
    const d = (await h.call({ method: 'GET', url: '/api/v1/models/tiny/drift?version=2' })).json;
    expect(d.version).toBe(2);
    expect(d.summary.status).toBe('drift');
    expect(d.summary.top.slice(0, 4).map((f: { feature: number }) => f.feature).sort()).toEqual([0, 1, 2, 3]);
  });
});

describe('defaults and durability', () => {
  it('samples 1% by default', async () => {
    const h = await servingApp();
    try {
      expect(h.app.flotilla.serving.payloads.options.rate).toBe(0.01);
    } finally {
      await h.app.close();
    }
  });

  it('keeps deployments, bandit posteriors and payloads across a restart, and preloads deployment targets at start', async () => {
    const dir = await tempDir();
    try {
      let h = await servingApp({ store: undefined, blobs: undefined, dataDir: dir.dir, serving: { payloadSampleRate: 1 } });
      await h.publishTiny('tiny', 2);
      await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 2 } });
      await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'prod', model: 'tiny', routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: 'production' }] } } });
      for (let i = 0; i < 10; i++) {
        await h.call({ method: 'POST', url: '/v2/models/prod/infer', json: { id: `r${i}`, inputs: [tensor(rowsOf(1))] } });
        await h.call({ method: 'POST', url: '/api/v1/deployments/prod/feedback', json: { requestId: `r${i}`, reward: 1 } });
      }
      const before = (await h.call({ method: 'GET', url: '/api/v1/deployments/prod/stats' })).json.bandit.arms;
      await h.app.close();

      h = await servingApp({ store: undefined, blobs: undefined, dataDir: dir.dir });
      try {
        await h.app.flotilla.serving.whenReady();
        const loaded = (await h.call({ method: 'GET', url: '/api/v1/serving' })).json.models.map((m: { version: number; coldStartMs: { total: number } }) => [m.version, m.coldStartMs.total > 0]);
        expect(loaded.sort()).toEqual([
          [1, true],
          [2, true],
        ]);
        expect((await h.call({ method: 'GET', url: '/v2/health/ready' })).status).toBe(200);
        const arms = (await h.call({ method: 'GET', url: '/api/v1/deployments/prod/stats' })).json.bandit.arms;
        expect(arms.map((a: { key: string; alpha: number; beta: number }) => [a.key, a.alpha, a.beta])).toEqual(before.map((a: { key: string; alpha: number; beta: number }) => [a.key, a.alpha, a.beta]));
        expect(arms.reduce((n: number, a: { rewards: number }) => n + a.rewards, 0)).toBe(10);
        expect((await h.call({ method: 'GET', url: '/api/v1/models/tiny/payloads' })).json.total).toBe(10);
      } finally {
        await h.app.close();
      }
    } finally {
      await dir.remove();
    }
  });
});
