import { afterAll, describe, expect, it } from 'vitest';
import { f32Codec } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { UploadGate } from '../../server/src/coordinator/upload-gate.js';
import { RawDevice } from '../helpers/raw-device.js';
import { nextEvent, startServer } from '../helpers/server.js';

describe('upload gate', () => {
  it('grants at most `slots` at once, FIFO, and passes slots on release', async () => {
    const g = new UploadGate(2, 60_000);
    const order: string[] = [];
    await g.acquire('a');
    await g.acquire('b');
    const c = g.acquire('c').then(() => order.push('c'));
    const d = g.acquire('d').then(() => order.push('d'));
    expect(g.inFlight).toBe(2);
    expect(g.queued).toBe(2);
    g.release('a');
    await c;
    expect(order).toEqual(['c']);
    g.release('b');
    await d;
    expect(order).toEqual(['c', 'd']);
    const e = g.acquire('e');
    g.clear(new Error('over'));
    await expect(e).rejects.toThrow('over');
  });

  it('takes back a slot held too long', async () => {
    const g = new UploadGate(1, 50);
    await g.acquire('a');
    await g.acquire('b'); // granted once a's hold expires
    expect(g.holds('a')).toBe(false);
    expect(g.holds('b')).toBe(true);
    g.clear(new Error('x'));
  });

  let app: FlotillaApp;
  afterAll(async () => app?.close());

  it('keeps uploads in flight within the slots the budget allows, over real sockets', async () => {
    // tiny-mlp update = 12 + 4 * 195 bytes; a budget of 2000 bytes allows 2 slots
    const s = await startServer({ uploadBudgetBytes: 2000 });
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'g', preset: 'tiny-mlp', plan: { clientsPerRound: 5, overSelect: 1, roundDeadlineMs: 30_000 } });
    const devs = Array.from({ length: 5 }, () => new RawDevice(s.url));
    for (const d of devs) await d.hello(app.flotilla.deviceToken, 'g');
    const done = nextEvent<RoundRecord>(co.events, 'round');
    await co.startTask('g');
    await Promise.all(devs.map((d) => d.instruction(1)));
    const runner = co.getRunner('g');
    const gate = runner.currentRound!.gate;
    const delta = f32Codec.encode(new Float32Array(195).fill(0.01));
    const granted: string[] = [];
    const readies = devs.map((d) => d.send('fit:ready', { taskId: 'g', round: 1, bytes: delta.byteLength }).then((a) => (granted.push(d.deviceId), a)));
    while (granted.length < 2) await new Promise((r) => setTimeout(r, 10)); // the first two acks, however slow the machine
    await new Promise((r) => setTimeout(r, 200)); // room for a wrongly granted third
    expect(gate.inFlight).toBe(2);
    expect(granted.length).toBe(2);
    expect((await devs[0].send('fit:ready', { taskId: 'g', round: 1, bytes: 1e9 })).error.code).toBe('FL_ERR_REPORT_TOO_LARGE');
    // each holder reports in turn; the next waiters get slots, never more than 2 in flight
    for (let i = 0; i < 5; i++) {
      while (granted.length <= i) await new Promise((r) => setTimeout(r, 10));
      const d = devs.find((x) => x.deviceId === granted[i])!;
      expect((await d.send('fit:report', { taskId: 'g', round: 1, numExamples: 1, metrics: {}, codec: 'f32', delta })).ok).toBe(true);
      expect(gate.inFlight).toBeLessThanOrEqual(2);
    }
    expect((await Promise.all(readies)).every((a) => a.ok)).toBe(true);
    expect((await done).state).toBe('done');
    devs.forEach((d) => d.close());
  });
});
