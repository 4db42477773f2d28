import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../server/src/fl/rng.js';
import { rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';
import { until } from '../helpers/until.js';

const tensor = (rows: number[][]) => ({ name: 'hidden_input', shape: [rows.length, 8], datatype: 'FP32', data: rows.flat() });

describe('deployments: split, bandit, shadow, stats', () => {
  let h: ServingHarness;
  beforeAll(async () => {
    // Seeded routing: every run routes (and so samples posteriors) the same way.
    h = await servingApp({ serving: { rng: createRng(20260521) } });
    await h.publishTiny('tiny', 2);
  });
  afterAll(async () => {
    await h.app.close();
  });
  const infer = (name: string, id: string, headers: Record<string, string> = {}) =>
    h.call({ method: 'POST', url: `/v2/models/${name}/infer`, json: { id, inputs: [tensor(rowsOf(1, id.length))] }, headers });
  const create = (json: unknown) => h.call({ method: 'POST', url: '/api/v1/deployments', json });

  it('creates, lists, reads, updates and deletes a deployment', async () => {
    const c = await create({ name: 'ab', model: 'tiny', routing: { mode: 'split', targets: [{ ref: 1, weight: 1 }, { ref: 'latest', weight: 3 }] } });
    expect(c.status).toBe(201);
    expect(c.json).toMatchObject({ name: 'ab', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1', weight: 1 }, { ref: 'latest', weight: 3 }] } });
    expect((await create({ name: 'ab', model: 'tiny', routing: { mode: 'split', targets: [{ ref: 1 }] } })).json.error.code).toBe('FL_ERR_DEPLOYMENT_EXISTS');
    expect((await h.call({ method: 'GET', url: '/api/v1/deployments' })).json.deployments.map((d: { name: string }) => d.name)).toContain('ab');
    const got = await h.call({ method: 'GET', url: '/api/v1/deployments/ab' });
    expect(got.json.resolved.map((r: { version: number; loaded: boolean }) => [r.version, r.loaded])).toEqual([
      [1, true],
      [2, true],
    ]);
    const put = await h.call({ method: 'PUT', url: '/api/v1/deployments/ab', json: { model: 'tiny', routing: { mode: 'split', targets: [{ ref: '2' }] }, description: 'all on 2' } });
    expect(put.status).toBe(200);
    expect(put.json.description).toBe('all on 2');
    expect((await infer('ab', 'after-update')).json.model_version).toBe('2');
    expect((await h.call({ method: 'DELETE', url: '/api/v1/deployments/ab' })).status).toBe(204);
    expect((await h.call({ method: 'GET', url: '/api/v1/deployments/ab' })).json.error.code).toBe('FL_ERR_DEPLOYMENT_NOT_FOUND');
    expect((await h.call({ method: 'DELETE', url: '/api/v1/deployments/ab' })).status).toBe(404);
    expect((await infer('ab', 'gone')).json.code).toBe('FL_ERR_MODEL_NOT_FOUND');
  });

  it('refuses invalid deployments with coded errors', async () => {
    expect((await create({ name: 'x', model: 'nope', routing: { mode: 'split', targets: [{ ref: 1 }] } })).json.error.code).toBe('FL_ERR_MODEL_NOT_FOUND');
    const missing = await create({ name: 'x', model: 'tiny', routing: { mode: 'split', targets: [{ ref: 9 }] } });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatchObject({ code: 'FL_ERR_DEPLOYMENT_INVALID', details: { target: '9', cause: { code: 'FL_ERR_VERSION_NOT_FOUND' } } });
    expect((await create({ name: 'x', model: 'tiny', routing: { mode: 'bandit', targets: [{ ref: 1 }] } })).json.error.code).toBe('FL_ERR_HTTP_VALIDATION');
    expect((await create({ name: 'x', model: 'tiny', routing: { mode: 'split', targets: [{ ref: 1 }, { ref: '1' }] } })).json.error.code).toBe('FL_ERR_DEPLOYMENT_INVALID');
    expect((await create({ name: 'x', model: 'tiny', routing: { mode: 'split', targets: [{ ref: 1, weight: -1 }] } })).status).toBe(400);
    await h.publishTiny('other');
    expect((await create({ name: 'other', model: 'tiny', routing: { mode: 'split', targets: [{ ref: 1 }] } })).json.error.code).toBe('FL_ERR_DEPLOYMENT_INVALID');
    expect((await create({ name: 'x', model: 'tiny', routing: { mode: 'warp', targets: [] } })).status).toBe(400);
  });

  it('splits traffic by weight, sticky by routing key, and reports per-version stats', async () => {
    await create({ name: 'split', model: 'tiny', routing: { mode: 'split', sticky: true, targets: [{ ref: '1', weight: 1 }, { ref: '2', weight: 3 }] } });
    const versions: string[] = [];
    for (let i = 0; i < 200; i++) {
      const res = await infer('split', `s-${i}`, { 'x-routing-key': `user-${i}` });
      expect(res.status).toBe(200);
      expect(res.headers['x-model-version']).toBe(res.json.model_version);
      expect(res.headers['x-deployment']).toBe('split');
      versions.push(res.json.model_version);
    }
    const share2 = versions.filter((v) => v === '2').length / 200;
    expect(share2).toBeGreaterThan(0.6);
    expect(share2).toBeLessThan(0.9);
    const sticky = new Set<string>();
    for (let i = 0; i < 10; i++) sticky.add((await infer('split', `again-${i}`, { 'x-routing-key': 'user-7' })).json.model_version);
    expect(sticky.size).toBe(1);
    const stats = (await h.call({ method: 'GET', url: '/api/v1/deployments/split/stats' })).json;
    expect(stats).toMatchObject({ deployment: 'split', model: 'tiny', mode: 'split', requests: 210, errors: 0 });
    expect(stats.latencyMs.total.count).toBe(210);
    for (const k of ['p50', 'p95', 'p99']) expect(stats.latencyMs.total[k]).toBeGreaterThan(0);
    expect(stats.latencyMs.total.p50).toBeLessThanOrEqual(stats.latencyMs.total.p99);
    expect(stats.latencyMs.queue.count).toBe(210);
    expect(stats.throughput).toBeGreaterThan(0);
    const byTarget = Object.fromEntries(stats.versions.map((v: { target: string; requests: number }) => [v.target, v.requests]));
    expect(byTarget['1'] + byTarget['2']).toBe(210);
    expect(stats.versions.find((v: { target: string }) => v.target === '2')).toMatchObject({ currentVersion: 2, byVersion: { 2: byTarget['2'] } });
    expect(stats.versions[0].coldStartMs).toBeGreaterThan(0);
    // Bad input counts as an error of the deployment.
    await h.call({ method: 'POST', url: '/v2/models/split/infer', json: { inputs: [{ name: 'hidden_input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] } });
    const after = (await h.call({ method: 'GET', url: '/api/v1/deployments/split/stats' })).json;
    expect(after.errorsByCode).toEqual({ FL_ERR_SERVING_BAD_INPUT: 1 });
  });

  it('learns with Thompson sampling from feedback credited to the version that served each request', async () => {
    await create({ name: 'bandit', model: 'tiny', routing: { mode: 'bandit', algorithm: 'thompson', targets: [{ ref: '1' }, { ref: '2' }] } });
    const served: string[] = [];
    // Rewards follow each arm's own count of requests, so they do not depend on which requests
    // routing happened to send it: version 2 converts 9 of every 10 it serves, version 1 1 of 10
    // (its 10th, 20th, ...).
    const pulls: Record<string, number> = { '1': 0, '2': 0 };
    for (let i = 0; i < 150; i++) {
      const res = await infer('bandit', `b-${i}`);
      const v: string = res.json.model_version;
      served.push(v);
      const n = pulls[v]++;
      const good = v === '2' ? n % 10 !== 9 : n % 10 === 9;
      const fb = await h.call({ method: 'POST', url: '/api/v1/deployments/bandit/feedback', json: { requestId: `b-${i}`, reward: good ? 1 : 0 } });
      expect(fb.status).toBe(200);
      expect(fb.json.credited.version).toBe(Number(res.json.model_version));
    }
    expect(served.slice(75).filter((v) => v === '2').length / 75).toBeGreaterThan(0.8);
    const stats = (await h.call({ method: 'GET', url: '/api/v1/deployments/bandit/stats' })).json;
    const arms = Object.fromEntries(stats.bandit.arms.map((a: { key: string }) => [a.key, a]));
    expect(stats.bandit.algorithm).toBe('thompson');
    expect(arms['2'].posteriorMean).toBeGreaterThan(0.7);
    expect(arms['1'].posteriorMean).toBeLessThan(0.5);
    expect(arms['1'].rewards + arms['2'].rewards).toBe(150);
    // Each request is credited once; unknown ids and non-bandit deployments are refused.
    const again = await h.call({ method: 'POST', url: '/api/v1/deployments/bandit/feedback', json: { requestId: 'b-0', reward: 1 } });
    expect(again.json.error.code).toBe('FL_ERR_DEPLOYMENT_UNKNOWN_REQUEST');
    expect(again.status).toBe(404);
    expect((await h.call({ method: 'POST', url: '/api/v1/deployments/bandit/feedback', json: { requestId: 'b-1', reward: 2 } })).status).toBe(400);
    await create({ name: 'plain', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] } });
    await infer('plain', 'p-1');
    expect((await h.call({ method: 'POST', url: '/api/v1/deployments/plain/feedback', json: { requestId: 'p-1', reward: 1 } })).json.error.code).toBe('FL_ERR_DEPLOYMENT_INVALID');
  });

  it('UCB1 explores both versions, then exploits the better one', async () => {
    await create({ name: 'ucb', model: 'tiny', routing: { mode: 'bandit', algorithm: 'ucb1', targets: [{ ref: '1' }, { ref: '2' }] } });
    const served: string[] = [];
    for (let i = 0; i < 120; i++) {
      const res = await infer('ucb', `u-${i}`);
      served.push(res.json.model_version);
      await h.call({ method: 'POST', url: '/api/v1/deployments/ucb/feedback', json: { requestId: `u-${i}`, reward: res.json.model_version === '2' } });
    }
    expect(new Set(served.slice(0, 2))).toEqual(new Set(['1', '2']));
    expect(served.slice(60).filter((v) => v === '2').length / 60).toBeGreaterThan(0.7);
    const stats = (await h.call({ method: 'GET', url: '/api/v1/deployments/ucb/stats' })).json;
    expect(stats.bandit.arms.find((a: { key: string }) => a.key === '2').ucb).toBeGreaterThan(1);
  });

  it('mirrors traffic to a shadow version, never answers with it, and reports agreement and latency difference', async () => {
    await create({ name: 'shadow', model: 'tiny', routing: { mode: 'shadow', primary: { ref: '2' }, shadow: { ref: '2', variant: 'int8' }, percent: 100 } });
    for (let i = 0; i < 40; i++) {
      const res = await infer('shadow', `sh-${i}`);
      expect(res.json.model_version).toBe('2');
      expect(res.json.parameters.variant).toBe('float32');
    }
    // Mirrored requests complete after their answers: wait until all have.
    const stats = await until(async () => {
      const st = (await h.call({ method: 'GET', url: '/api/v1/deployments/shadow/stats' })).json;
      return st.shadow.completed + st.shadow.failed >= st.shadow.mirrored && st.shadow.mirrored === 40 && st;
    }, 'the 40 mirrored requests to complete');
    expect(stats.shadow).toMatchObject({ target: '2#int8', percent: 100, mirrored: 40, completed: 40, failed: 0, rowsCompared: 40 });
    expect(stats.shadow.agreement).toBeGreaterThan(0.9);
    expect(stats.shadow.meanAbsDiff).toBeLessThan(0.05);
    expect(typeof stats.shadow.latencyDiffMs.mean).toBe('number');
    expect(stats.shadow.shadowLatencyMs.count).toBe(40);
    const roles = Object.fromEntries(stats.versions.map((v: { target: string; role: string; requests: number }) => [v.target, [v.role, v.requests]]));
    expect(roles).toEqual({ '2': ['primary', 40], '2#int8': ['shadow', 40] });
    // A shadow comparing two different versions agrees less than perfectly but is still reported.
    await create({ name: 'shadow2', model: 'tiny', routing: { mode: 'shadow', primary: { ref: '2' }, shadow: { ref: '1' }, percent: 50 } });
    for (let i = 0; i < 40; i++) await infer('shadow2', `sh2-${i}`);
    const s2 = await until(async () => {
      const st = (await h.call({ method: 'GET', url: '/api/v1/deployments/shadow2/stats' })).json.shadow;
      return st.completed + st.failed >= st.mirrored && st;
    }, 'the mirrored requests of shadow2 to complete');
    expect(s2.mirrored).toBeGreaterThan(8);
    expect(s2.mirrored).toBeLessThan(32);
    expect(s2.completed).toBe(s2.mirrored);
  });

  it('exposes loaded versions with cold-start times, batch sizes and latency histograms', async () => {
    const s = (await h.call({ method: 'GET', url: '/api/v1/serving' })).json;
    expect(s.backend).toMatch(/wasm|cpu|tensorflow/);
    const v2 = s.models.find((m: { model: string; version: number; variant: string }) => m.model === 'tiny' && m.version === 2 && m.variant === 'float32');
    expect(v2.coldStartMs.total).toBeGreaterThan(0);
    expect(v2.coldStartMs.total).toBeCloseTo(v2.coldStartMs.load + v2.coldStartMs.warmup, 2);
    expect(v2.requests).toBeGreaterThan(0);
    expect(Object.values(v2.batcher.batchSizes).reduce((a: number, b) => a + (b as number), 0)).toBe(v2.batcher.batches);
    expect(v2.latencyMs.compute.count).toBeGreaterThan(0);
  });

  it('lets viewers read stats but not change deployments', async () => {
    const viewer = (await h.app.flotilla.authenticator.createToken({ role: 'viewer', createdBy: 'test' })).token;
    expect((await h.call({ method: 'GET', url: '/api/v1/deployments/split/stats', token: viewer })).status).toBe(200);
    expect((await h.call({ method: 'DELETE', url: '/api/v1/deployments/split', token: viewer })).status).toBe(403);
  });
});

describe('batching settings', () => {
  it('apply to the versions a deployment routes to; on a shared version the most recently updated deployment wins', async () => {
    const h = await servingApp({ serving: { batching: { maxBatchSize: 16 } } });
    try {
      await h.publishTiny('tiny');
      const serving = h.app.flotilla.serving;
      const batchOf = () => serving.cache.peek('tiny', 1)!.batcher.settings.maxBatchSize;
      await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'a', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { maxBatchSize: 8 } } });
      expect(batchOf()).toBe(8);
      await new Promise((r) => setTimeout(r, 5));
      await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'b', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { maxBatchSize: 4 } } });
      for (const name of ['a', 'b', 'a']) await h.call({ method: 'POST', url: `/v2/models/${name}/infer`, json: { inputs: [tensor(rowsOf(1))] } });
      expect(batchOf()).toBe(4);
      expect(serving.cache.peek('tiny', 1)!.batcher.settings).toMatchObject({ maxQueueDelayMs: 5, maxQueueSize: 1024 });
    } finally {
      await h.app.close();
    }
  });
});

describe('overload and timeouts', () => {
  it('answers 429 FL_ERR_SERVING_OVERLOADED when the queue is full and never hangs', async () => {
    const h = await servingApp({ serving: { batching: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 2 } } });
    try {
      await h.publishTiny('tiny');
      const body = { inputs: [tensor(rowsOf(64))] };
      const all = await Promise.all(Array.from({ length: 40 }, () => h.call({ method: 'POST', url: '/v2/models/tiny/infer', json: body })));
      const statuses = all.map((r) => r.status);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
      expect(all.find((r) => r.status === 429)!.json.code).toBe('FL_ERR_SERVING_OVERLOADED');
      // Afterwards it serves again.
      expect((await h.call({ method: 'POST', url: '/v2/models/tiny/infer', json: body })).status).toBe(200);
    } finally {
      await h.app.close();
    }
  });

  it('answers 504 FL_ERR_SERVING_TIMEOUT for a request queued past its deadline (deployment batching)', async () => {
    const h = await servingApp();
    try {
      await h.publishTiny('tiny');
      await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'slow', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { maxBatchSize: 64, maxQueueDelayMs: 200, timeoutMs: 20, delay: 'fixed' } } });
      const res = await h.call({ method: 'POST', url: '/v2/models/slow/infer', json: { inputs: [tensor(rowsOf(1))] } });
      expect(res.status).toBe(504);
      expect(res.json.code).toBe('FL_ERR_SERVING_TIMEOUT');
    } finally {
      await h.app.close();
    }
  });
});
