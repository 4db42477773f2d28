import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type FlotillaApp, type RoundRecord } from '@flotilla/server';
import { FlotillaClient, LocalTrainer, type Dataset } from '@flotilla/client';

/** A learnable 3-class problem on 8 features: class = argmax of three fixed linear scores. */
function synthetic(n: number, seed: number): Dataset {
  let s = seed;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const x = new Float32Array(n * 8);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 8; j++) x[i * 8 + j] = rand();
    const f = x.subarray(i * 8, i * 8 + 8);
    const scores = [f[0] + f[1], f[2] - f[3], f[4] + f[5] - f[6]];
    y[i] = scores.indexOf(Math.max(...scores));
  }
  return { x, y, inputSize: 8, numClasses: 3 };
}

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
