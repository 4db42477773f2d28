import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaClient, type Dataset } from '@flotilla/client';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { nextEvent, startServer } from '../helpers/server.js';

/** hooks.transformDelta: the caller replaces (or edits in place) the delta a device reports. */
function data(n: number): Dataset {
  const x = new Float32Array(n * 8).map((_, i) => Math.sin(i));
  const y = new Uint8Array(n).map((_, i) => i % 3);
  return { x, y, inputSize: 8, numClasses: 3 };
}

describe('SDK hooks.transformDelta', () => {
  let app: FlotillaApp;
  const clients: FlotillaClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await app.close();
  });

  async function oneRound(transformDelta: NonNullable<NonNullable<ConstructorParameters<typeof FlotillaClient>[0]['hooks']>['transformDelta']>, deadlineMs = 30_000) {
    const s = await startServer();
    app = s.app;
    const co = app.flotilla.coordinator;
    const task = await co.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, maxRounds: 1, roundDeadlineMs: deadlineMs, learningRate: 0.5 } });
    const c = new FlotillaClient({ url: s.url, token: app.flotilla.deviceToken, taskId: 't', data: { train: () => data(20) }, hooks: { transformDelta } });
    clients.push(c);
    await c.start();
    const round = nextEvent<RoundRecord>(co.events, 'round', () => true, 25_000);
    await co.startTask('t');
    const r = await round;
    const reg = app.flotilla.registry;
    const before = await reg.readWeights(await reg.getVersion(task.modelName, 1));
    const after = r.state === 'done' ? await reg.readWeights(await reg.getVersion(task.modelName, 2)) : undefined;
    return { r, before, after };
  }

  it('reports the returned vector instead of the trained delta, and passes round, task and example count', async () => {
    const seen: Array<{ taskId: string; round: number; numExamples: number; length: number; nonZero: boolean }> = [];
    let size = 0;
    const { r, before, after } = await oneRound((delta, info) => {
      seen.push({ ...info, length: delta.length, nonZero: delta.some((v) => v !== 0) });
      size = delta.length;
      return new Float32Array(delta.length).fill(0.25);
    });
    expect(r.state).toBe('done');
    expect(seen).toEqual([{ taskId: 't', round: 1, numExamples: 20, length: size, nonZero: true }]);
    // FedAvg of one report: the new global is the old one plus exactly what the hook returned.
    for (let i = 0; i < before.length; i++) expect(after![i]).toBeCloseTo(before[i] + 0.25, 5);
  });

  it('keeps in-place edits when the hook returns nothing', async () => {
    const { r, before, after } = await oneRound((delta) => {
      delta.fill(0);
    });
    expect(r.state).toBe('done');
    expect(Array.from(after!)).toEqual(Array.from(before));
  });

  it('fails the round locally when the hook returns a vector of another length', async () => {
    const { r, after } = await oneRound(() => new Float32Array(3), 1500);
    expect(r.state).toBe('failed');
    expect(after).toBeUndefined();
  });
});
