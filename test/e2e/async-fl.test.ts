import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FlotillaApp, type RoundRecord } from '@flotilla/server';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { getCodec, type TaskPlanInput } from '@flotilla/protocol';
import { startServer } from '../helpers/server.js';
import { RawDevice } from '../helpers/raw-device.js';
import { synthetic } from '../helpers/synthetic.js';

/**
 * Asynchronous tasks (docs/async.md) over real sockets: SDK devices with real tfjs training reach
 * committed versions through buffered model steps; reports against unknown or too-stale versions
 * and from devices without a job are refused with their codes and change nothing; plans mixing
 * modes and strategies that cannot work on a buffer are refused at creation.
 */
const ASYNC = { mode: 'async', concurrency: 4, bufferSize: 2 } as const;

describe('async FL over real sockets', () => {
  let app: FlotillaApp;
  let url: string;
  const clients: FlotillaClient[] = [];
  const raws: RawDevice[] = [];
  beforeAll(async () => {
    ({ app, url } = await startServer({ logger: false }));
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    for (const r of raws.splice(0)) r.close();
  });
  afterAll(async () => {
    await app.close();
  });

  it('SDK devices train an async task to committed versions, one every publishEvery steps, with staleness recorded per step', async () => {
    const co = app.flotilla.coordinator;
    const plan: TaskPlanInput = { ...ASYNC, publishEvery: 2, maxRounds: 8, epochs: 1, batchSize: 16, learningRate: 0.2, roundDeadlineMs: 30_000, seed: 3, stalenessWeighting: { kind: 'polynomial', a: 0.5 } };
    await co.createTask({ id: 'af', preset: 'tiny-mlp', plan });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 6; i++) {
      const data = synthetic(120, 40 + i);
      // Two slow devices, so that some reports arrive after the model stepped (staleness > 0).
      const slow = i < 2;
      const c = new FlotillaClient({
        url,
        token: app.flotilla.deviceToken,
        taskId: 'af',
        data: { train: () => data },
        trainer,
        hooks: slow ? { beforeReport: () => new Promise((r) => setTimeout(() => r('send'), 1500)) } : undefined,
      });
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.start()));
    const steps: RoundRecord[] = [];
    co.events.on('round', (r: RoundRecord) => r.taskId === 'af' && steps.push(r));
    const done = new Promise<void>((resolve) => co.events.on('task', (t: { id: string; state: string }) => t.id === 'af' && t.state === 'done' && resolve()));
    await co.startTask('af');
    await done;
    const task = co.getRunner('af').record;
    expect(task.currentVersion).toBe(1 + 4); // 8 steps, published every 2
    expect(task.stateReason).toMatch(/step cap 8/);
    const stored = (await app.flotilla.store.listRounds('af', { limit: 100 })).reverse();
    expect(stored.map((r) => r.round)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(stored.every((r) => r.state === 'done' && r.reported.length === 2)).toBe(true);
    expect(stored.filter((r) => r.committedVersion !== undefined).map((r) => [r.round, r.committedVersion])).toEqual([[2, 2], [4, 3], [6, 4], [8, 5]]);
    const staleness = stored.flatMap((r) => Object.entries(r.trainMetrics).filter(([k]) => k.startsWith('staleness.')).flatMap(([k, n]) => Array(n).fill(Number(k.slice(10)))));
    expect(staleness.length).toBe(16);
    expect(Math.max(...staleness)).toBeGreaterThan(0);
    // The registry holds each published version, parented on the one before.
    for (let v = 2; v <= 5; v++) expect((await app.flotilla.store.getVersion('af', v))!.parentVersion).toBe(v - 1);
    // The rounds view shows each step's staleness distribution.
    const res = await app.inject({ method: 'GET', url: '/api/v1/tasks/af/rounds/3', headers: { authorization: `Bearer ${app.flotilla.adminToken}` } });
    const view = res.json();
    expect(Object.values(view.staleness.histogram as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(2);
  }, 120_000);

  it('refuses reports against an unknown version, from a device without a job, and older than maxStaleness, changing nothing', async () => {
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'ab', preset: 'tiny-mlp', plan: { mode: 'async', concurrency: 2, bufferSize: 1, minAvailable: 2, maxStaleness: 0, maxRounds: 100, seed: 1 } });
    const n = co.getRunner('ab').trainableLength;
    const delta = getCodec('f32').encode(new Float32Array(n).fill(0.001));
    const report = (round: number) => ({ taskId: 'ab', round, numExamples: 10, metrics: { loss: 1 }, codec: 'f32', delta });
    const [a, b, c] = [new RawDevice(url), new RawDevice(url), new RawDevice(url)];
    raws.push(a, b, c);
    for (const d of [a, b]) expect((await d.hello(app.flotilla.deviceToken, 'ab')).ok).toBe(true);
    await co.startTask('ab');
    const [ia, ib] = [await a.instruction(1), await b.instruction(1)];
    expect([ia.modelVersion, ib.modelVersion]).toEqual([1, 1]);
    // c connects after both slots are taken (concurrency 2): it has no job.
    expect((await c.hello(app.flotilla.deviceToken, 'ab')).ok).toBe(true);
    expect((await c.report(report(1))).error.code).toBe('FL_ERR_ASYNC_NOT_ADMITTED');
    expect((await a.report(report(7))).error.code).toBe('FL_ERR_ASYNC_UNKNOWN_VERSION');
    const before = co.getRunner('ab').record.currentVersion;
    expect(before).toBe(1);
    // a's report steps the model (bufferSize 1) and publishes version 2; b's base (version 1) is now 1 step old.
    const stepped = new Promise<RoundRecord>((resolve) => co.events.on('round', (r: RoundRecord) => r.taskId === 'ab' && r.committedVersion === 2 && resolve(r)));
    expect((await a.report(report(1))).ok).toBe(true);
    await stepped;
    const refused = await b.report(report(1));
    expect(refused.error.code).toBe('FL_ERR_ASYNC_STALE_REPORT');
    expect(refused.error.details).toMatchObject({ staleness: 1, maxStaleness: 0 });
    expect(co.getRunner('ab').record.currentVersion).toBe(2);
    expect((await app.flotilla.store.listRounds('ab', { limit: 10 })).map((r) => r.reported)).toEqual([[a.deviceId]]);
    await co.stopTask('ab');
  }, 60_000);

  it('pausing publishes the steps taken since the last version, and resuming admits devices again', async () => {
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'ap', preset: 'tiny-mlp', plan: { mode: 'async', concurrency: 2, bufferSize: 1, publishEvery: 1000, maxRounds: 1000, seed: 5 } });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 3; i++) {
      const data = synthetic(60, 90 + i);
      const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 'ap', data: { train: () => data }, trainer });
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.start()));
    let steps = 0;
    const two = new Promise<void>((resolve) => co.events.on('round', (r: RoundRecord) => r.taskId === 'ap' && ++steps === 2 && resolve()));
    await co.startTask('ap');
    await two;
    expect(co.getRunner('ap').record.currentVersion).toBe(1); // nothing published yet (publishEvery 1000)
    await co.pauseTask('ap');
    const task = co.getRunner('ap').record;
    expect(task.currentVersion).toBe(2);
    const newest = (await app.flotilla.store.listRounds('ap', { limit: 1 }))[0];
    expect(newest.committedVersion).toBe(2);
    expect((await app.flotilla.store.getTask('ap'))!.nextRound).toBe(newest.round + 1);
    const more = new Promise<void>((resolve) => co.events.on('round', (r: RoundRecord) => r.taskId === 'ap' && r.round > newest.round && resolve()));
    await co.startTask('ap');
    await more;
    await co.stopTask('ap');
    expect(co.getRunner('ap').record.currentVersion).toBe(3);
  }, 60_000);

  it('refuses plans that mix async-only and sync-only fields, naming the field', async () => {
    const co = app.flotilla.coordinator;
    const refusal = async (plan: Record<string, unknown>) => {
      try {
        await co.createTask({ id: `mix-${Math.random().toString(36).slice(2)}`, preset: 'tiny-mlp', plan: plan as TaskPlanInput });
      } catch (err) {
        return err as { code: string; details: { issues: Array<{ path: unknown }> } };
      }
      throw new Error('accepted');
    };
    const a = await refusal({ ...ASYNC, clientsPerRound: 3 });
    expect(a.code).toBe('FL_ERR_TASK_INVALID_SPEC');
    expect(a.details.issues[0].path).toBe('clientsPerRound');
    expect((await refusal({ clientsPerRound: 3, publishEvery: 2 })).details.issues[0].path).toBe('publishEvery');
    expect((await refusal({ ...ASYNC, overSelect: 1.5 })).details.issues[0].path).toBe('overSelect');
    const missing = await refusal({ mode: 'async', concurrency: 4 });
    expect(JSON.stringify(missing.details)).toContain('bufferSize');
    // A running async task's plan cannot gain sync fields nor change mode.
    await co.createTask({ id: 'mix-ok', preset: 'tiny-mlp', plan: { ...ASYNC } });
    await expect(co.updatePlan('mix-ok', { minReports: 1 })).rejects.toMatchObject({ code: 'FL_ERR_TASK_INVALID_SPEC' });
    await expect(co.updatePlan('mix-ok', { mode: 'sync' })).rejects.toMatchObject({ code: 'FL_ERR_TASK_INVALID_SPEC' });
    expect((await co.updatePlan('mix-ok', { concurrency: 8 })).plan.concurrency).toBe(8);
  });

  it('refuses strategies that cannot aggregate a buffer, and accepts the server optimizers and DP-FedAvg', async () => {
    const co = app.flotilla.coordinator;
    for (const strategy of [{ name: 'fedmedian' }, { name: 'fedtrimmedavg', params: { beta: 0.1 } }, { name: 'krum', params: { byzantine: 0 } }, { name: 'dpfedavg', params: { noiseMultiplier: 1, clipNorm: 1, inner: 'fedmedian' } }]) {
      await expect(co.createTask({ id: `s-${strategy.name}-${Math.random().toString(36).slice(2)}`, preset: 'tiny-mlp', plan: { ...ASYNC, strategy } })).rejects.toMatchObject({ code: 'FL_ERR_ASYNC_STRATEGY_UNSUPPORTED' });
    }
    for (const name of ['fedavgm', 'fedadam', 'fedyogi', 'fedadagrad']) await co.createTask({ id: `ok-${name}`, preset: 'tiny-mlp', plan: { ...ASYNC, strategy: { name } } });
    await co.createTask({ id: 'ok-dp', preset: 'tiny-mlp', plan: { ...ASYNC, strategy: { name: 'dpfedavg', params: { noiseMultiplier: 1, clipNorm: 1 } } } });
  });
});
