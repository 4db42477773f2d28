import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaClient, type Dataset } from '@flotilla/client';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * hooks.instructed: called once per valid fit instruction, before the device fetches the model or
 * asks for its data (the simulator starts a device's nominal job clock there).
 */
function data(n: number): Dataset {
  const x = new Float32Array(n * 8).map((_, i) => Math.cos(i));
  const y = new Uint8Array(n).map((_, i) => i % 3);
  return { x, y, inputSize: 8, numClasses: 3 };
}

describe('SDK hooks.instructed', () => {
  let app: FlotillaApp;
  const clients: FlotillaClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await app.close();
  });

  it('runs once per round, with task and round, before the data is asked for and before the report', async () => {
    const s = await startServer();
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, maxRounds: 2, roundDeadlineMs: 30_000, learningRate: 0.1 } });
    const order: string[] = [];
    const c = new FlotillaClient({
      url: s.url,
      token: app.flotilla.deviceToken,
      taskId: 't',
      data: {
        train: () => {
          order.push('train');
          return data(20);
        },
      },
      hooks: {
        instructed: ({ taskId, round }) => void order.push(`instructed ${taskId} ${round}`),
        beforeReport: async ({ round }) => {
          order.push(`report ${round}`);
          return 'send';
        },
      },
    });
    clients.push(c);
    await c.start();
    const second = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 2 && r.state === 'done', 25_000);
    await co.startTask('t');
    await second;
    expect(order).toEqual(['instructed t 1', 'train', 'report 1', 'instructed t 2', 'train', 'report 2']);
  });
});
