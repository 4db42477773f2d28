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
