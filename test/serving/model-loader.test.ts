import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError, loadModel, MemoryModelCache } from '@flotilla/client';
import { DEVICE, expectClose, referencePredict, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

describe('SDK loadModel (registry model for on-device inference, ETag cache)', () => {
  let h: ServingHarness;
  let url: string;
  let published: Awaited<ReturnType<ServingHarness['publishTiny']>>;
  beforeAll(async () => {
    h = await servingApp();
    published = await h.publishTiny('tiny', 2);
    await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 1 } });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await h.app.close();
  });
  const predict = (m: tf.LayersModel, rows: number[][]) => tf.tidy(() => (m.predict(tf.tensor2d(rows)) as tf.Tensor).arraySync() as number[][]);

  it('loads latest, predicts as the registry version does, and revalidates by ETag on the next load', async () => {
    const cache = new MemoryModelCache();
    const rows = rowsOf(3);
    const first = await loadModel('tiny', { serverUrl: url, token: DEVICE, cache });
    expect(first).toMatchObject({ name: 'tiny', version: 2, variant: 'float32', fromCache: { modelJson: false, weights: false } });
    expect(first.downloadedBytes).toBe(published.weights[1].length * 4);
    expect(first.etag).toMatch(/^"[0-9a-f]{64}"$/);
    expectClose(predict(first.model, rows).flat(), (await referencePredict(published.spec, published.weights[1], rows)).flat());
    const again = await loadModel('tiny', { serverUrl: url, token: DEVICE, cache });
    expect(again.fromCache).toEqual({ modelJson: true, weights: true });
    expect(again.downloadedBytes).toBe(0);
    expect(again.version).toBe(2);
    first.model.dispose();
    again.model.dispose();
  });

  it('follows an alias when it moves, and loads an explicit version', async () => {
    const cache = new MemoryModelCache();
    const p1 = await loadModel('tiny', { serverUrl: url, token: DEVICE, alias: 'production', cache });
    expect(p1.version).toBe(1);
    await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 2 } });
    const p2 = await loadModel('tiny', { serverUrl: url, token: DEVICE, alias: 'production', cache });
    expect(p2.version).toBe(2);
    expect(p2.fromCache.modelJson).toBe(false);
    const v1 = await loadModel('tiny', { serverUrl: url, token: DEVICE, version: 1, cache });
    expect(v1.version).toBe(1);
    for (const m of [p1, p2, v1]) m.model.dispose();
  });

  it('loads the int8 and float16 variants (close to float32)', async () => {
    const rows = rowsOf(4, 2);
    const want = (await referencePredict(published.spec, published.weights[1], rows)).flat();
    for (const variant of ['int8', 'float16', 'pruned'] as const) {
      const m = await loadModel('tiny', { serverUrl: url, token: DEVICE, variant });
      expect(m.variant).toBe(variant);
      expect(m.version).toBe(2);
      if (variant !== 'pruned') expectClose(predict(m.model, rows).flat(), want, 0.05);
      if (variant === 'float16') expect(m.downloadedBytes).toBe(published.weights[1].length * 2);
      m.model.dispose();
    }
  });

  it('surfaces registry errors as ClientError codes', async () => {
    await expect(loadModel('nope', { serverUrl: url, token: DEVICE })).rejects.toMatchObject({ wire: { code: 'FL_ERR_MODEL_NOT_FOUND' } });
    await expect(loadModel('tiny', { serverUrl: url, token: DEVICE, alias: 'canary' })).rejects.toBeInstanceOf(ClientError);
    await expect(loadModel('tiny', { serverUrl: url })).rejects.toMatchObject({ wire: { code: 'FL_ERR_AUTH_REQUIRED' } });
    await expect(loadModel('tiny', { serverUrl: url, alias: 'latest', version: 1 })).rejects.toBeInstanceOf(TypeError);
  });
});
