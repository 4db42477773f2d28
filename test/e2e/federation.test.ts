import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type FlotillaApp, type RoundRecord } from '@flotilla/server';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { synthetic } from '../helpers/synthetic.js';


describe('a small federation over real sockets', () => {
  let app: FlotillaApp;
  let url: string;
  const clients: FlotillaClient[] = [];

  beforeAll(async () => {
    app = await buildApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await app.close();
  });

  it('improves its loss over FedAvg rounds with 5 devices', async () => {
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'tiny', preset: 'tiny-mlp', plan: { clientsPerRound: 4, overSelect: 1.25, maxRounds: 6, epochs: 2, batchSize: 16, learningRate: 0.2, roundDeadlineMs: 30_000 } });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 5; i++) {
      const data = synthetic(200, 17 + i);
      clients.push(new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 'tiny', data: { train: () => data }, trainer }));
    }
    await Promise.all(clients.map((c) => c.start()));
    const rounds: RoundRecord[] = [];
    const done = new Promise<void>((resolve) => {
      co.events.on('round', (r: RoundRecord) => rounds.push(r));
      co.events.on('task', (t: { state: string }) => t.state === 'done' && resolve());
    });
    await co.startTask('tiny');
    await done;
    const committed = rounds.filter((r) => r.state === 'done');
    expect(committed.length).toBeGreaterThanOrEqual(5);
    const first = committed[0].trainMetrics.loss;
    const last = committed[committed.length - 1].trainMetrics.loss;
    expect(last).toBeLessThan(first * 0.8);
    const task = co.getRunner('tiny').record;
    expect(task.currentVersion).toBe(1 + committed.length);
  });
});

describe('federated evaluation', () => {
  it('asks devices to evaluate each committed version and stores the weighted result with the round and the version', async () => {
    const app = await buildApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const co = app.flotilla.coordinator;
    const clients: FlotillaClient[] = [];
    try {
      await co.createTask({ id: 'ev', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, maxRounds: 1, evalClientsPerRound: 3 } });
      const trainer = new LocalTrainer();
      for (let i = 0; i < 3; i++) {
        const train = synthetic(50, i);
        const held = synthetic(20 + 10 * i, 100 + i);
        clients.push(new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 'ev', data: { train: () => train, evaluate: () => held }, trainer }));
      }
      await Promise.all(clients.map((c) => c.start()));
      const evaluated = new Promise<{ round: number; version: number; metrics: Record<string, number> }>((resolve) => co.events.on('evaluation', resolve));
      await co.startTask('ev');
      const e = await evaluated;
      expect(e.metrics.evalParticipants).toBe(3);
      expect(e.metrics.accuracy).toBeGreaterThanOrEqual(0);
      expect(e.metrics.accuracy).toBeLessThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 100));
      expect((await app.flotilla.store.getRound('ev', e.round))!.evalMetrics.accuracy).toBeCloseTo(e.metrics.accuracy, 6);
      expect((await app.flotilla.store.getVersion('ev', e.version))!.metrics.federated_accuracy).toBeCloseTo(e.metrics.accuracy, 6);
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await app.close();
    }
  });
});
