import { describe, expect, it } from 'vitest';
import { rowsOf, servingApp } from './serving-helpers.js';

const body = { inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: rowsOf(1)[0] }] };
const TINY_BYTES = (8 * 16 + 16 + 16 * 3 + 3) * 4;

describe('model cache', () => {
  it('keeps loaded versions under the memory bound, least recently used out first, and reloads on demand', async () => {
    const h = await servingApp({ serving: { maxModelBytes: Math.floor(TINY_BYTES * 2.5) } });
    try {
      await h.publishTiny('tiny', 3);
      const loaded = async () =>
        (await h.call({ method: 'GET', url: '/api/v1/serving' })).json.models.map((m: { version: number }) => m.version).sort();
      for (const v of [1, 2]) expect((await h.call({ method: 'POST', url: `/v2/models/tiny/versions/${v}/infer`, json: body })).status).toBe(200);
      expect(await loaded()).toEqual([1, 2]);
      // Touch 1, then load 3: 2 is the least recently used and goes.
      await h.call({ method: 'POST', url: '/v2/models/tiny/versions/1/infer', json: body });
      await h.call({ method: 'POST', url: '/v2/models/tiny/versions/3/infer', json: body });
      expect(await loaded()).toEqual([1, 3]);
      const stats = (await h.call({ method: 'GET', url: '/api/v1/serving' })).json;
      expect(stats.totalBytes).toBe(2 * TINY_BYTES);
      expect(stats.totalBytes).toBeLessThanOrEqual(stats.maxBytes);
      // 2 serves again after a fresh load (a new cold start).
      const again = await h.call({ method: 'POST', url: '/v2/models/tiny/versions/2/infer', json: body });
      expect(again.json.model_version).toBe('2');
      expect(await loaded()).toEqual([2, 3]);
    } finally {
      await h.app.close();
    }
  });

  it('answers 503 FL_ERR_SERVING_UNAVAILABLE for a version larger than the whole bound', async () => {
    const h = await servingApp({ serving: { maxModelBytes: 100 } });
    try {
      await h.publishTiny('tiny');
      const res = await h.call({ method: 'POST', url: '/v2/models/tiny/infer', json: body });
      expect(res.status).toBe(503);
      expect(res.json.code).toBe('FL_ERR_SERVING_UNAVAILABLE');
    } finally {
      await h.app.close();
    }
  });

  it('serves many concurrent requests for a version that is still loading with one load', async () => {
    const h = await servingApp();
    try {
      await h.publishTiny('tiny');
      const all = await Promise.all(Array.from({ length: 30 }, () => h.call({ method: 'POST', url: '/v2/models/tiny/infer', json: body })));
      expect(all.every((r) => r.status === 200)).toBe(true);
      const models = (await h.call({ method: 'GET', url: '/api/v1/serving' })).json.models;
      expect(models).toHaveLength(1);
      expect(models[0].requests).toBe(30);
      expect(models[0].batcher.batches).toBeLessThan(30);
    } finally {
      await h.app.close();
    }
  });

  it('warms versions an alias named in a deployment (or a served latest) moves to, and follows deployments written by another node', async () => {
    const h = await servingApp({ serving: { warmIntervalMs: 0 } });
    try {
      await h.publishTiny('tiny', 2);
      await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 1 } });
      await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'prod', model: 'tiny', routing: { mode: 'split', targets: [{ ref: 'production' }] } } });
      await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 2 } });
      const serving = h.app.flotilla.serving;
      // The alias move through the admin API reaches serving at once (Registry onAliasChanged), which
      // warms the version in the background; no poll is needed.
      await expect.poll(() => serving.cache.peek('tiny', 2), { timeout: 30_000 }).not.toBeNull();
      // `latest` of a model served without a deployment is kept warm too.
      await h.call({ method: 'POST', url: '/v2/models/tiny/infer', json: body });
      const { publishTiny } = h;
      await publishTiny('tiny');
      expect(serving.cache.peek('tiny', 3)).toBeNull();
      await serving.refreshAliases();
      expect(serving.cache.peek('tiny', 3)).not.toBeNull();
      // Another node writes a deployment straight into the shared store.
      const now = Date.now();
      await h.app.flotilla.store.createDeployment({ name: 'remote', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] }, createdAt: now, updatedAt: now });
      expect((await h.call({ method: 'GET', url: '/api/v1/deployments/remote' })).status).toBe(404);
      await serving.syncDeployments();
      expect((await h.call({ method: 'POST', url: '/v2/models/remote/infer', json: body })).json.model_version).toBe('1');
      await h.app.flotilla.store.deleteDeployment('remote');
      await serving.syncDeployments();
      expect((await h.call({ method: 'GET', url: '/api/v1/deployments/remote' })).status).toBe(404);
    } finally {
      await h.app.close();
    }
  });
});

describe('serving options', () => {
  it('refuses out-of-range options with FL_ERR_CONFIG_INVALID', async () => {
    const { resolveServingOptions } = await import('../../server/src/serving/serving-options.js');
    for (const o of [{ payloadSampleRate: 2 }, { maxModelBytes: 0 }, { batching: { maxBatchSize: 0 } }, { batching: { maxQueueDelayMs: -1 } }]) {
      expect(() => resolveServingOptions(o)).toThrow(expect.objectContaining({ code: 'FL_ERR_CONFIG_INVALID' }));
    }
    expect(resolveServingOptions({}).payloadSampleRate).toBe(0.01);
  });
});
