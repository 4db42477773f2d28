import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f32Codec } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * Every bad message of issue 2 over a raw socket.io-client: each gets a coded error ack, is
 * counted, the connection survives, and the aggregate is untouched (the committed model equals
 * global + the weighted mean of the good reports alone).
 */
describe('bad input on the device protocol', () => {
  let app: FlotillaApp;
  let url: string;
  let token: string;
  const devices: RawDevice[] = [];
  const P = 195; // tiny-mlp parameters

  beforeAll(async () => {
    ({ app, url } = await startServer());
    token = app.flotilla.deviceToken;
    await app.flotilla.coordinator.createTask({
      id: 'bad',
      preset: 'tiny-mlp',
      plan: { clientsPerRound: 2, overSelect: 1, minAvailable: 3, roundDeadlineMs: 60_000, maxRounds: 5, maxUpdateBytes: 2048 },
    });
  });

  afterAll(async () => {
    devices.forEach((d) => d.close());
    await app.close();
  });

  const dev = () => {
    const d = new RawDevice(url);
    devices.push(d);
    return d;
  };

  it('refuses malformed handshakes, wrong versions, bad tokens and unknown tasks with coded connect errors', async () => {
    const d = dev();
    expect((await d.connect({ token })).error.code).toBe('FL_ERR_PROTO_INVALID_MESSAGE');
    expect((await d.connect({})).error.code).toBe('FL_ERR_AUTH_REQUIRED');
    expect((await d.hello(token, 'bad', { protocolVersion: 999 })).error.code).toBe('FL_ERR_PROTO_VERSION_MISMATCH');
    expect((await d.hello('wrong-token', 'bad')).error.code).toBe('FL_ERR_AUTH_INVALID_TOKEN');
    expect((await d.hello(token, 'no-such-task')).error.code).toBe('FL_ERR_TASK_NOT_FOUND');
    expect(d.socket.connected).toBe(false);
    const ok = await d.hello(token, 'bad');
    expect(ok.ok).toBe(true);
    expect((await d.send('hello', { protocolVersion: 1, token, taskId: 'bad' })).error.code).toBe('FL_ERR_PROTO_UNKNOWN_EVENT');
    expect((await d.send('no-such-event', {})).error.code).toBe('FL_ERR_PROTO_UNKNOWN_EVENT');
    expect((await d.send('heartbeat', {})).ok).toBe(true);
    expect(d.socket.connected).toBe(true);
  });

  it('rejects every bad report with its code and folds only the good ones', async () => {
    const co = app.flotilla.coordinator;
    const runner = co.getRunner('bad');
    const a = dev();
    const b = dev();
    await a.hello(token, 'bad');
    await b.hello(token, 'bad');
    const all = devices.filter((d) => d.socket.connected);
    expect(all.length).toBe(3);
    const before = Float32Array.from(runner.globalWeights);
    const committed = nextEvent<RoundRecord>(co.events, 'round');
    await co.startTask('bad');
    const round = runner.currentRound!.round;
    const selectedIds = new Set(runner.currentRound!.selected);
    const [s1, s2] = all.filter((d) => selectedIds.has(d.deviceId));
    const outsider = all.find((d) => !selectedIds.has(d.deviceId))!;
    await s1.instruction(round);

    const good1 = new Float32Array(P).fill(0.5);
    const good2 = new Float32Array(P).fill(-0.25);
    const report = (delta: Uint8Array | unknown, over: Record<string, unknown> = {}) => ({ taskId: 'bad', round, numExamples: 10, metrics: { loss: 1 }, codec: 'f32', delta, ...over });
    const nan = new Float32Array(P);
    nan[7] = NaN;
    const inf = new Float32Array(P);
    inf[3] = Infinity;
    const enc = f32Codec.encode(good1);
    const rejectedBefore = { ...co.stats.rejected };

    const cases: Array<[string, RawDevice, unknown]> = [
      ['FL_ERR_REPORT_SHAPE_MISMATCH', s1, report(f32Codec.encode(new Float32Array(P - 1)))],
      ['FL_ERR_REPORT_NON_FINITE', s1, report(f32Codec.encode(nan))],
      ['FL_ERR_REPORT_NON_FINITE', s1, report(f32Codec.encode(inf))],
      ['FL_ERR_REPORT_TOO_LARGE', s1, report(new Uint8Array(4096))],
      ['FL_ERR_CODEC_CORRUPT', s1, report(enc.subarray(0, enc.length - 5))],
      ['FL_ERR_CODEC_CORRUPT', s1, report(new Uint8Array([1, 2, 3]))],
      ['FL_ERR_REPORT_WRONG_CODEC', s1, report(enc, { codec: 'f16' })],
      ['FL_ERR_PROTO_INVALID_MESSAGE', s1, report(Array.from(good1))],
      ['FL_ERR_PROTO_INVALID_MESSAGE', s1, report(enc, { numExamples: -3 })],
      ['FL_ERR_PROTO_INVALID_MESSAGE', s1, report(enc, { metrics: { loss: null } })],
      ['FL_ERR_PROTO_INVALID_MESSAGE', s1, report(enc, { extra: 1 })],
      ['FL_ERR_ROUND_WRONG_ROUND', s1, report(enc, { round: round + 5 })],
      ['FL_ERR_AUTH_FORBIDDEN', s1, report(enc, { taskId: 'other' })],
      ['FL_ERR_ROUND_NOT_SELECTED', outsider, report(enc)],
    ];
    // Each report asks for its upload slot first (fit:ready), as the protocol requires; a refusal
    // there carries the same code the report would get.
    for (const [code, d, msg] of cases) {
      const ack = await d.report(msg as { taskId: unknown; round: unknown });
      expect(ack.ok, code).toBe(false);
      expect(ack.error.code).toBe(code);
      expect(typeof ack.error.message).toBe('string');
    }
    expect(Buffer.from(runner.globalWeights.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    expect(runner.currentRound!.reported.size).toBe(0);
    const counted = Object.values(co.stats.rejected).reduce((x, y) => x + y, 0) - Object.values(rejectedBefore).reduce((x, y) => x + y, 0);
    expect(counted).toBe(cases.length);

    expect((await s1.report(report(f32Codec.encode(good1), { numExamples: 30 }))).ok).toBe(true);
    expect((await s1.report(report(f32Codec.encode(good1)))).error.code).toBe('FL_ERR_ROUND_DUPLICATE_REPORT');
    expect((await s2.report(report(f32Codec.encode(good2), { numExamples: 10 }))).ok).toBe(true);
    const rec = await committed;
    expect(rec.state).toBe('done');
    expect(rec.rejected.length).toBeGreaterThanOrEqual(6);
    // weighted mean: (30 * 0.5 + 10 * -0.25) / 40 = 0.3125
    const after = runner.globalWeights;
    for (let i = 0; i < P; i++) expect(after[i]).toBeCloseTo(before[i] + 0.3125, 6);
    expect((await s2.report(report(f32Codec.encode(good2)))).error.code).toBe('FL_ERR_ROUND_LATE_REPORT');
    for (const d of [s1, s2, outsider]) expect(d.socket.connected).toBe(true);
  });
});
