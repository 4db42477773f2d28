import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPreset, specOf } from '@flotilla/model';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { startServer } from '../helpers/server.js';
import { synthetic } from '../helpers/synthetic.js';
import { expectClose, referencePredict, rowsOf, servingApp, type ServingHarness } from './serving-helpers.js';

const tensor = (rows: number[][]) => ({ name: 'hidden_input', shape: [rows.length, 8], datatype: 'FP32', data: rows.flat() });

describe('worker-thread model instances', () => {
  let h: ServingHarness;
  let published: Awaited<ReturnType<ServingHarness['publishTiny']>>;
  beforeAll(async () => {
    h = await servingApp();
    published = await h.publishTiny('tiny', 1);
    const c = await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'two', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { instances: 2, maxBatchSize: 16 } } });
    expect(c.status).toBe(201);
  });
  afterAll(async () => {
    await h.app.close();
  });

  it('answers what tfjs answers, from two instances off the main thread', async () => {
    const rows = rowsOf(5, 2);
    const want = await referencePredict(published.spec, published.weights[0], rows);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => h.call({ method: 'POST', url: '/v2/models/two/infer', json: { id: `i-${i}`, inputs: [tensor(rows)] } })));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expectClose(a.json.outputs[0].data, want.flat());
    }
    const m = (await h.call({ method: 'GET', url: '/api/v1/serving' })).json.models[0];
    expect(m.instances).toMatchObject({ size: 2, restarts: 0 });
    expect(m.batcher.parallel).toBe(2);
  });

  it('restarts a crashed instance and still answers every queued request (its batch retried once)', async () => {
    const serving = h.app.flotilla.serving;
    const served = serving.cache.peek('tiny', 1)!;
    const rows = rowsOf(16, 4);
    const want = (await referencePredict(published.spec, published.weights[0], rows)).flat();
    const all = Array.from({ length: 200 }, (_, i) => serving.infer({ endpoint: 'two', requestId: `c-${i}`, parse: () => ({ data: Float32Array.from(rows.flat()), rows: 16 }) }));
    // Crash an instance while it holds a batch.
    while (!served.crashInstance()) await new Promise((r) => setImmediate(r));
    const results = await Promise.allSettled(all);
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed).toHaveLength(0);
    for (const r of results) if (r.status === 'fulfilled') expectClose(Array.from(r.value.output), want);
    expect(served.instances!.restarts).toBe(1);
    expect(served.instances!.size).toBe(2);
  });
  it('retires instances when the deployment asks for fewer, down to the main thread, and keeps answering', async () => {
    const rows = rowsOf(2, 7);
    const want = (await referencePredict(published.spec, published.weights[0], rows)).flat();
    const put = (instances: number) =>
      h.call({ method: 'PUT', url: '/api/v1/deployments/two', json: { model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { instances, maxBatchSize: 16 } } });
    const served = h.app.flotilla.serving.cache.peek('tiny', 1)!;
    for (const [n, size] of [
      [1, 1],
      [0, null],
    ] as const) {
      expect((await put(n)).status).toBe(200);
      const res = await h.call({ method: 'POST', url: '/v2/models/two/infer', json: { inputs: [tensor(rows)] } });
      expect(res.status).toBe(200);
      expectClose(res.json.outputs[0].data, want);
      expect(served.instances?.size ?? null).toBe(size);
      expect(served.batcher.stats().parallel).toBe(Math.max(1, n));
    }
  });
});

describe('device traffic while inference saturates the instances', () => {
  let app: FlotillaApp;
  let url: string;
  const clients: FlotillaClient[] = [];
  beforeAll(async () => {
    ({ app, url } = await startServer({ processMetrics: false, authRateLimit: false, publicInference: true, serving: { batching: { instances: 2, maxBatchSize: 64, maxQueueSize: 100_000 } } }));
    const preset = buildPreset('mnist-mlp');
    const { spec, weights } = specOf(preset.model, preset.numClasses);
    preset.model.dispose();
    await app.flotilla.registry.publish({ model: 'big', spec, weights });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await app.close();
  });

  it('keeps answering heartbeats and completes a round', { timeout: 300_000 }, async () => {
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'fl', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, maxRounds: 1, epochs: 1, batchSize: 16, roundDeadlineMs: 120_000 } });
    // The heartbeating device belongs to a task of its own, so the round never waits on it.
    await co.createTask({ id: 'hb', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    // Closed-loop inference load over real HTTP: 6 clients, 32-row MNIST requests, until told to stop.
    const image = Array.from({ length: 32 * 784 }, (_, i) => (i % 97) / 97);
    const body = JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [32, 784], datatype: 'FP32', data: image }] });
    let stop = false;
    const statuses: Record<number, number> = {};
    let sawQueue = false;
    const load = Promise.all(
      Array.from({ length: 6 }, async () => {
        while (!stop) {
          const res = await fetch(`${url}/v2/models/big/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await res.arrayBuffer();
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          const served = app.flotilla.serving.cache.list().find((m) => m.record.model === 'big');
          if (served && served.batcher.queued > 0) sawQueue = true;
        }
      }),
    );
    while (!statuses[200]) await new Promise((r) => setTimeout(r, 20));

    const device = new RawDevice(url);
    expect((await device.hello(app.flotilla.deviceToken, 'hb')).ok).toBe(true);
    const trainer = new LocalTrainer();
    for (let i = 0; i < 2; i++) {
      const data = synthetic(64, 40 + i);
      clients.push(new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 'fl', data: { train: () => data }, trainer }));
    }
    await Promise.all(clients.map((c) => c.start()));
    const committed = new Promise<RoundRecord>((resolve) => co.events.on('round', (r: RoundRecord) => r.state === 'done' && resolve(r)));
    await co.startTask('fl');
    let beats = 0;
    let roundDone = false;
    void committed.then(() => (roundDone = true));
    while (!roundDone || beats < 20) {
      expect((await device.send('heartbeat', {})).ok).toBe(true);
      beats++;
    }
    expect((await committed).state).toBe('done');
    stop = true;
    await load;
    device.close();
    expect(Object.keys(statuses)).toEqual(['200']);
    expect(sawQueue).toBe(true); // the instances were saturated: requests queued behind busy instances
    const big = app.flotilla.serving.servingStats().models.find((m) => m.model === 'big')!;
    expect(big.instances?.size).toBe(2);
  });
});
