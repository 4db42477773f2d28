import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaClient, type Dataset } from '@flotilla/client';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * The SDK sends its report over the upload channel when the coordinator offers it, and over the
 * socket when it does not (a server started with reportUploads: false stands for an older one);
 * real local training, the reported delta fixed by hooks.transformDelta so both runs report the
 * same bytes from the same initial weights and must commit the same model.
 */
function data(n: number): Dataset {
  const x = new Float32Array(n * 8).map((_, i) => Math.sin(i));
  const y = new Uint8Array(n).map((_, i) => i % 3);
  return { x, y, inputSize: 8, numClasses: 3 };
}

describe('SDK report upload', () => {
  const apps: FlotillaApp[] = [];
  const clients: FlotillaClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function round(reportUploads: boolean, init?: { spec: any; weights: Float32Array }) {
    const s = await startServer({ reportUploads });
    apps.push(s.app);
    const co = s.app.flotilla.coordinator;
    const plan = { clientsPerRound: 2, overSelect: 1, minReports: 2, maxRounds: 1, roundDeadlineMs: 60_000, learningRate: 0.5 };
    const task = init ? await co.createTask({ id: 't', ...init, plan }) : await co.createTask({ id: 't', preset: 'tiny-mlp', plan });
    const before = co.getRunner('t').globalWeights;
    const fits: number[] = [];
    for (let i = 0; i < 2; i++) {
      const c = new FlotillaClient({
        url: s.url,
        token: s.app.flotilla.deviceToken,
        taskId: 't',
        data: { train: () => data(10 + 10 * i) },
        hooks: { transformDelta: (d) => d.map((_, j) => ((j * 3 + i) % 7 - 3) * 0.01) },
      });
      c.on('fit', (e) => fits.push(e.round));
      clients.push(c);
      await c.start();
    }
    const done = nextEvent<RoundRecord>(co.events, 'round', () => true, 60_000);
    await co.startTask('t');
    expect((await done).state).toBe('done');
    while (fits.length < 2) await new Promise((r) => setTimeout(r, 20));
    return { spec: task.spec, before, after: co.getRunner('t').globalWeights, uploaded: co.stats.reportsUploaded };
  }

  it('uploads over HTTP when offered, falls back to the socket when not, and both commit the same model', async () => {
    const a = await round(true);
    expect(a.uploaded).toBe(2);
    const b = await round(false, { spec: a.spec, weights: a.before });
    expect(b.uploaded).toBe(0);
    expect(Array.from(b.before)).toEqual(Array.from(a.before));
    expect(Array.from(b.after)).toEqual(Array.from(a.after));
    expect(Array.from(a.after)).not.toEqual(Array.from(a.before));
  });
});
