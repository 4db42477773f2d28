import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, PROTOCOL_VERSION } from '@flotilla/protocol';
import { f32Codec } from '@flotilla/protocol';
import type { FlotillaApp } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { startServer } from '../helpers/server.js';

/** Seeded PRNG so a failing case can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const P = 195;
const SEED = 20261128;

/**
 * Thousands of random and mutated socket events (wrong types, giant arrays, NaN and Infinity,
 * truncated binary, replayed round ids, unknown events) from selected devices mid-round: every
 * acked one is answered with a registry code, nothing crashes, nothing hangs, and the round's
 * aggregate and the global weights stay bit-for-bit unchanged.
 */
describe('socket fuzz', () => {
  let app: FlotillaApp;
  let url: string;
  const devs: RawDevice[] = [];

  beforeAll(async () => {
    ({ app, url } = await startServer({ deviceRateLimit: { burst: 1e9, perSecond: 1e9 } }));
    await app.flotilla.coordinator.createTask({ id: 'fz', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, minAvailable: 2, roundDeadlineMs: 600_000, maxUpdateBytes: 4096 } });
    for (let i = 0; i < 2; i++) {
      const d = new RawDevice(url);
      devs.push(d);
      await d.hello(app.flotilla.deviceToken, 'fz');
    }
    await app.flotilla.coordinator.startTask('fz');
    await devs[0].instruction(1);
  });
  afterAll(async () => {
    devs.forEach((d) => d.close());
    await app.close();
  });

  it('answers every bad event with a code and changes nothing', async () => {
    const r = rng(SEED);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
    const runner = app.flotilla.coordinator.getRunner('fz');
    const before = Buffer.from(Float32Array.from(runner.globalWeights).buffer);
    const good = f32Codec.encode(new Float32Array(P).fill(0.1));

    const scalar = () => pick<unknown>([null, true, 0, -1, 1e308, NaN, Infinity, -Infinity, '', 'x'.repeat(5000), [], {}, 3.5, '1', undefined]);
    const junk = (depth = 0): unknown => {
      const k = r();
      if (depth > 3 || k < 0.4) return scalar();
      if (k < 0.55) return new Uint8Array(Math.floor(r() * 64));
      if (k < 0.6) return new Array(Math.floor(r() * 100_000)).fill(r());
      if (k < 0.8) return Array.from({ length: Math.floor(r() * 5) }, () => junk(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(r() * 5) }, (_, i) => [pick(['taskId', 'round', 'delta', 'codec', 'metrics', `k${i}`]), junk(depth + 1)]));
    };
    const badDelta = (): unknown => {
      const k = r();
      if (k < 0.25) return good.subarray(0, Math.floor(r() * good.length)); // truncated
      if (k < 0.45) {
        const x = new Float32Array(P).fill(0.1);
        x[Math.floor(r() * P)] = pick([NaN, Infinity, -Infinity]);
        return f32Codec.encode(x);
      }
      if (k < 0.6) return f32Codec.encode(new Float32Array(Math.floor(r() * 2 * P) + (r() < 0.5 ? 0 : P + 1)).fill(1)); // wrong length (never P)
      if (k < 0.7) return new Uint8Array(8192); // oversize
      if (k < 0.8) {
        const b = Uint8Array.from(good);
        b[Math.floor(r() * 4)] ^= 0xff; // corrupt header
        return b;
      }
      if (k < 0.9) return Array.from(new Float32Array(P)); // JSON numbers
      return junk();
    };
    const mutatedReport = () => {
      const m: Record<string, unknown> = { taskId: 'fz', round: 1, numExamples: 10, metrics: { loss: 1 }, codec: 'f32', delta: badDelta() };
      if (r() < 0.3) m.round = pick([0, -1, 2, 1.5, 99, 2 ** 40, '1', null]);
      if (r() < 0.15) m.taskId = pick(['other', '', 'fz fz', 7]);
      if (r() < 0.15) m.numExamples = pick([0, -1, 1e12, NaN, '10']);
      if (r() < 0.15) m.metrics = pick([{ loss: NaN }, { loss: 'x' }, [], null, Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`m${i}`, i]))]);
      if (r() < 0.1) m.codec = pick(['f64', 'int8', '', 3]);
      if (r() < 0.1) m.extra = junk();
      if (r() < 0.1) delete m[pick(Object.keys(m))];
      return m;
    };
    const makeEvent = (): [string, unknown] => {
      const k = r();
      if (k < 0.5) return ['fit:report', mutatedReport()];
      if (k < 0.55) return ['fit:ready', pick([junk(), { taskId: 'fz', round: pick([1, 2, 0]), bytes: pick([100, 1e9, -1]) }])];
      if (k < 0.65) return ['hello', pick([junk(), { protocolVersion: PROTOCOL_VERSION, token: app.flotilla.deviceToken, taskId: 'fz' }])]; // no such event since protocol 2
      if (k < 0.75) return ['eval:report', pick([junk(), { taskId: 'fz', round: 1, numExamples: 1, metrics: { accuracy: 1 } }])];
      if (k < 0.82) return ['fit:failure', junk()];
      if (k < 0.9) return ['heartbeat', junk()];
      return [pick(['', 'x', 'message', 'error', 'fit:instruction', '__proto__', 'constructor', 'a'.repeat(300)]), junk()];
    };

    const N = 3000;
    const codes = new Map<string, number>();
    let okAcks = 0;
    for (let sent = 0; sent < N; sent += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const [event, payload] = makeEvent();
          const dev = pick(devs);
          if (r() < 0.1) {
            dev.socket.emit(event, payload); // no ack callback: must not crash anything
            return;
          }
          // Most reports ask for their upload slot first, so that the fuzz reaches the checks behind the grant.
          const granted = event === 'fit:report' && r() < 0.8 && typeof payload === 'object' && payload !== null;
          const ack = granted ? await dev.report(payload as { taskId: unknown; round: unknown }) : await dev.socket.timeout(10_000).emitWithAck(event, payload);
          if (ack?.ok === true) {
            okAcks++;
            expect(['heartbeat', 'fit:ready', 'eval:report', 'fit:failure']).toContain(event);
            expect(event).not.toBe('fit:report');
          } else {
            expect(ERROR_CODES).toContain(ack.error.code);
            codes.set(ack.error.code, (codes.get(ack.error.code) ?? 0) + 1);
          }
        }),
      );
    }
    expect(devs.every((d) => d.socket.connected)).toBe(true);
    const round = runner.currentRound!;
    expect(round.round).toBe(1);
    expect(round.state).toBe('training');
    expect(round.reported.size).toBe(0);
    expect(round.aggregator.count).toBe(0);
    expect(Buffer.from(runner.globalWeights.buffer).equals(before)).toBe(true);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    // the fuzz reached the deep checks, not just the schema
    for (const c of ['FL_ERR_PROTO_INVALID_MESSAGE', 'FL_ERR_REPORT_SHAPE_MISMATCH', 'FL_ERR_REPORT_NON_FINITE', 'FL_ERR_CODEC_CORRUPT', 'FL_ERR_REPORT_TOO_LARGE', 'FL_ERR_PROTO_UNKNOWN_EVENT']) {
      expect(codes.get(c) ?? 0, c).toBeGreaterThan(0);
    }
    expect(okAcks).toBeGreaterThan(0);
  }, 120_000);

  it('stops a flood from one device with FL_ERR_PROTO_RATE_LIMITED and keeps serving others', async () => {
    const s = await startServer({ deviceRateLimit: { burst: 20, perSecond: 10 } });
    try {
      await s.app.flotilla.coordinator.createTask({ id: 'fl', preset: 'tiny-mlp', plan: { clientsPerRound: 5 } });
      const flooder = new RawDevice(s.url);
      const calm = new RawDevice(s.url);
      await flooder.hello(s.app.flotilla.deviceToken, 'fl');
      await calm.hello(s.app.flotilla.deviceToken, 'fl');
      const acks = await Promise.all(Array.from({ length: 200 }, () => flooder.socket.timeout(10_000).emitWithAck('heartbeat', {})));
      const limited = acks.filter((a) => !a.ok && a.error.code === 'FL_ERR_PROTO_RATE_LIMITED').length;
      expect(limited).toBeGreaterThanOrEqual(150);
      expect((await calm.send('heartbeat', {})).ok).toBe(true);
      expect(s.app.flotilla.coordinator.stats.rejected.FL_ERR_PROTO_RATE_LIMITED).toBe(limited);
      flooder.close();
      calm.close();
    } finally {
      await s.app.close();
    }
  });
});
