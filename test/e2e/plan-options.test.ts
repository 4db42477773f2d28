import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { f32Codec } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { nextEvent, startServer } from '../helpers/server.js';
import { synthetic } from '../helpers/synthetic.js';
import { tempDir } from '../store/temp-dir.js';


/** Plans with other strategies, codecs and DP run end to end through real SDK clients. */
describe('plan options end to end', () => {
  let app: FlotillaApp;
  let clients: FlotillaClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    clients = [];
    await app.close();
  });

  let url = '';
  async function federate(plan: Record<string, unknown>, rounds: number): Promise<RoundRecord[]> {
    const s = await startServer();
    app = s.app;
    url = s.url;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'p', preset: 'tiny-mlp', plan: { clientsPerRound: 4, overSelect: 1, maxRounds: rounds, epochs: 2, batchSize: 16, learningRate: 0.2, ...plan } as never });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 4; i++) {
      const data = synthetic(200, 31 + i);
      clients.push(new FlotillaClient({ url: s.url, token: app.flotilla.deviceToken, taskId: 'p', data: { train: () => data }, trainer }));
    }
    await Promise.all(clients.map((c) => c.start()));
    const recs: RoundRecord[] = [];
    co.events.on('round', (r: RoundRecord) => recs.push(r));
    const done = nextEvent<{ state: string }>(co.events, 'task', (t) => t.state === 'done', 90_000);
    await co.startTask('p');
    await done;
    return recs.filter((r) => r.state === 'done');
  }

  it.each([
    ['fedadam + int8 (error feedback)', { strategy: { name: 'fedadam', params: { eta: 0.05 } }, codec: 'int8' }],
    ['fedavgm + topk 25% (error feedback)', { strategy: { name: 'fedavgm', params: {} }, codec: 'topk', topkFraction: 0.25 }],
    ['fedprox + f16', { strategy: { name: 'fedprox', params: {} }, proximalMu: 0.01, codec: 'f16' }],
  ])('%s lowers the loss', async (_name, plan) => {
    const recs = await federate(plan, 5);
    expect(recs.length).toBe(5);
    expect(recs[4].trainMetrics.loss).toBeLessThan(recs[0].trainMetrics.loss);
    expect(recs[0].bytesUp).toBeGreaterThan(0);
  });

  it('DP-FedAvg with client-side clipping sends the clip norm to devices and reports epsilon', async () => {
    const recs = await federate({ strategy: { name: 'dpfedavg', params: { noiseMultiplier: 0.5, clipNorm: 0.5, clipping: 'client', populationSize: 100 } } }, 3);
    expect(recs.length).toBe(3);
    const m = recs[2].trainMetrics;
    expect(m.dpEpsilon).toBeGreaterThan(0);
    expect(m.dpEpsilon).toBeGreaterThan(recs[0].trainMetrics.dpEpsilon);
    expect(m.dpServerClipped).toBe(0); // every device clipped to the norm it was sent
    // Stored with the round and returned by the admin API, over real HTTP.
    const res = await fetch(`${url}/api/v1/tasks/p/rounds`, { headers: { authorization: `Bearer ${app.flotilla.adminToken}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { rounds: Array<{ round: number; trainMetrics: Record<string, number> }> };
    const byRound = new Map(body.rounds.map((r) => [r.round, r.trainMetrics.dpEpsilon]));
    for (const r of recs) expect(byRound.get(r.round)).toBe(r.trainMetrics.dpEpsilon);
  });

  it('screening rejects an update whose norm is an outlier, with its code', async () => {
    const s = await startServer();
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'sc', preset: 'tiny-mlp', plan: { clientsPerRound: 3, overSelect: 1, minReports: 2, roundDeadlineMs: 30_000, screening: { multiplier: 3, minHistory: 2, window: 10 } } });
    const devs = Array.from({ length: 3 }, () => new RawDevice(s.url));
    for (const d of devs) await d.hello(app.flotilla.deviceToken, 'sc');
    await co.startTask('sc');
    await devs[0].instruction(1);
    const rep = (v: number) => ({ taskId: 'sc', round: 1, numExamples: 1, metrics: {}, codec: 'f32', delta: f32Codec.encode(new Float32Array(195).fill(v)) });
    expect((await devs[0].report(rep(0.01))).ok).toBe(true);
    expect((await devs[1].report(rep(0.012))).ok).toBe(true);
    const poisoned = await devs[2].report(rep(-0.1)); // 10x the norm of the others
    expect(poisoned.error.code).toBe('FL_ERR_REPORT_REJECTED_NORM');
    await expect(co.createTask({ id: 'bad', preset: 'tiny-mlp', plan: { clientsPerRound: 3, screening: { multiplier: 0 } } })).rejects.toMatchObject({ code: 'FL_ERR_TASK_INVALID_SPEC' });
    devs.forEach((d) => d.close());
  });

  it('screening keeps its norm history across a restart: the first report after it is screened against the committed rounds', async () => {
    const tmp = await tempDir();
    const token = 'device-token-for-screening-restart';
    const rep = (round: number, v: number) => ({ taskId: 'sr', round, numExamples: 1, metrics: {}, codec: 'f32', delta: f32Codec.encode(new Float32Array(195).fill(v)) });
    try {
      let s = await startServer({ dataDir: tmp.dir, deviceToken: token });
      app = s.app;
      await app.flotilla.coordinator.createTask({ id: 'sr', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, minReports: 2, roundDeadlineMs: 30_000, screening: { multiplier: 3, minHistory: 2, window: 10 } } });
      let devs = [new RawDevice(s.url), new RawDevice(s.url)];
      for (const d of devs) await d.hello(token, 'sr');
      const committed = nextEvent<RoundRecord>(app.flotilla.coordinator.events, 'round', (r) => r.round === 1);
      await app.flotilla.coordinator.startTask('sr');
      await devs[0].instruction(1);
      expect((await devs[0].report(rep(1, 0.01))).ok).toBe(true);
      expect((await devs[1].report(rep(1, 0.012))).ok).toBe(true);
      expect((await committed).state).toBe('done');
      devs.forEach((d) => d.close());
      await app.close();

      s = await startServer({ dataDir: tmp.dir, deviceToken: token });
      app = s.app;
      devs = [new RawDevice(s.url), new RawDevice(s.url)];
      for (const d of devs) await d.hello(token, 'sr');
      // The round that started after round 1 died with the first server; its retry gets the next number.
      const runner = app.flotilla.coordinator.getRunner('sr');
      for (let t0 = Date.now(); runner.currentRound?.state !== 'training' && Date.now() - t0 < 15_000; ) await new Promise((r) => setTimeout(r, 20));
      const round = runner.currentRound!.round;
      expect(round).toBeGreaterThan(1);
      await devs[0].instruction(round);
      // 10x the norms of round 1: rejected at once, which it would not be with an empty history.
      expect((await devs[0].report(rep(round, -0.1))).error.code).toBe('FL_ERR_REPORT_REJECTED_NORM');
      expect((await devs[1].report(rep(round, 0.011))).ok).toBe(true);
      devs.forEach((d) => d.close());
    } finally {
      await app.close();
      await tmp.remove();
    }
  });
});
