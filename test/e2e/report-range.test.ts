import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { sendReport } from '../helpers/raw-round.js';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * Issue 11 item 9 (reports): values a report carries must stay within float32 range where they
 * end up. A device that reports huge but finite deltas (3e38) every round used to push the
 * aggregate past float32 at commit, so every round after the first failed. Its reports are now
 * refused at intake (FL_ERR_REPORT_OUT_OF_RANGE) once they would overflow, and rounds commit
 * with the honest reports.
 */
describe('reports out of float32 range', () => {
  let app: FlotillaApp;
  let url: string;
  const devices: RawDevice[] = [];
  const P = 195; // tiny-mlp parameters

  beforeAll(async () => {
    ({ app, url } = await startServer({ authRateLimit: false }));
    await app.flotilla.coordinator.createTask({
      id: 'range',
      preset: 'tiny-mlp',
      plan: { clientsPerRound: 2, overSelect: 1, minReports: 1, roundDeadlineMs: 60_000, maxRounds: 50 },
    });
  });
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await app.close();
  });

  it('a device sending 3e38 every round no longer fails the rounds', async () => {
    const co = app.flotilla.coordinator;
    const token = app.flotilla.deviceToken;
    const attacker = new RawDevice(url);
    const honest = new RawDevice(url);
    devices.push(attacker, honest);
    expect((await attacker.hello(token, 'range', { deviceId: 'attacker' })).ok).toBe(true);
    expect((await honest.hello(token, 'range', { deviceId: 'honest' })).ok).toBe(true);
    const records: RoundRecord[] = [];
    co.events.on('round', (r: RoundRecord) => r.taskId === 'range' && records.push(r));
    await co.startTask('range');
    const codes: string[] = [];
    for (let round = 1; round <= 4; round++) {
      const closed = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'range' && r.round === round);
      await attacker.instruction(round);
      await honest.instruction(round);
      const bad = await sendReport(attacker, 'range', round, new Float32Array(P).fill(3e38), { numExamples: 1e9 });
      if (!bad.ok) {
        codes.push(bad.error.code);
        // Refused: the attacker gives up its place so the round closes without waiting for the deadline.
        await attacker.send('fit:failure', { taskId: 'range', round, reason: 'refused' });
      }
      expect((await sendReport(honest, 'range', round, new Float32Array(P).fill(0.01))).ok).toBe(true);
      await closed;
    }
    expect(records.map((r) => [r.round, r.state, r.failureReason ?? null])).toEqual([1, 2, 3, 4].map((n) => [n, 'done', null]));
    expect(codes.length).toBeGreaterThanOrEqual(3);
    expect(new Set(codes)).toEqual(new Set(['FL_ERR_REPORT_OUT_OF_RANGE']));
    const w = co.getRunner('range').globalWeights;
    expect(w.every((x) => Number.isFinite(x))).toBe(true);
  });

  it('refuses metrics beyond float32 range with a coded error and changes nothing', async () => {
    const co = app.flotilla.coordinator;
    const runner = co.getRunner('range');
    const [a, b] = devices;
    const closed = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'range' && r.round === 5);
    await a.instruction(5);
    await b.instruction(5);
    const before = Float32Array.from(runner.globalWeights);
    const ack = await sendReport(b, 'range', 5, new Float32Array(P).fill(0.01), { metrics: { loss: 1e39 } });
    expect(ack.ok).toBe(false);
    expect(ack.error.code).toBe('FL_ERR_REPORT_OUT_OF_RANGE');
    expect(runner.currentRound!.reported.size).toBe(0);
    expect(Buffer.from(runner.globalWeights.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    expect((await sendReport(b, 'range', 5, new Float32Array(P).fill(0.01))).ok).toBe(true);
    await a.send('fit:failure', { taskId: 'range', round: 5, reason: 'done here' });
    expect((await closed).state).toBe('done');
  });
});
