import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { io as ioClient } from 'socket.io-client';
import { PROTOCOL_VERSION, f32Codec } from '@flotilla/protocol';
import type { FlotillaApp } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { startServer } from '../helpers/server.js';

/**
 * The socket edge under hostile input (issue 11 items 1, 2, 3, 7, 15; issue 12 part 5): nothing
 * is read before an accepted handshake, every event is size-limited before it is parsed and
 * takes a rate-limit token, failed handshakes are throttled per address without refusing valid
 * credentials, and malformed calls get coded acks.
 */

const HOSTILE = fileURLToPath(new URL('../helpers/hostile-sockets.mjs', import.meta.url));

/** A raw engine.io websocket (no socket.io client in the way). Resolves once the engine's open packet arrived. */
async function rawSocket(url: string): Promise<{ ws: WebSocket; closed: Promise<number>; messages: string[] }> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  const messages: string[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  ws.on('message', (m) => messages.push(String(m)));
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  return { ws, closed, messages };
}

const waitFor = async (cond: () => boolean, what: string, ms = 20_000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('socket edge', () => {
  let app: FlotillaApp;
  let url: string;
  let token: string;
  const devs: RawDevice[] = [];
  const dev = () => {
    const d = new RawDevice(url);
    devs.push(d);
    return d;
  };

  beforeAll(async () => {
    ({ app, url } = await startServer({ maxUpdateBytes: 1 << 20, unauthenticatedTimeoutMs: 500, authRateLimit: { max: 5, timeWindowMs: 60_000 } }));
    token = app.flotilla.deviceToken;
    await app.flotilla.coordinator.createTask({ id: 'e', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, roundDeadlineMs: 600_000, maxUpdateBytes: 4096, evalClientsPerRound: 0 } });
  });
  afterAll(async () => {
    devs.forEach((d) => d.close());
    await app.close();
  });

  it('refuses a connection without credentials before any event, and closes sockets that never authenticate', async () => {
    const d = dev();
    const refused = await d.connect({});
    expect(refused.error.code).toBe('FL_ERR_AUTH_REQUIRED');
    expect(d.socket.connected).toBe(false);
    // An event packet before the namespace CONNECT is dropped unread and the connection closed.
    const early = await rawSocket(url);
    early.ws.send('42["heartbeat",{}]');
    await early.closed;
    // A large packet before authentication is never parsed: the connection closes.
    const big = await rawSocket(url);
    big.ws.send(`0${JSON.stringify({ token: 'x'.repeat(100_000) })}`);
    await big.closed;
    // A connection that never completes a handshake is closed after unauthenticatedTimeoutMs.
    const idle = await rawSocket(url);
    await idle.closed;
    expect(idle.messages.some((m) => m.startsWith('40'))).toBe(false);
  });

  it('answers a wrong protocol version, a malformed auth object and an unknown task with their codes', async () => {
    expect((await dev().hello(token, 'e', { protocolVersion: 1 })).error.code).toBe('FL_ERR_PROTO_VERSION_MISMATCH');
    expect((await dev().hello(token, 'e', { extra: 1 })).error.code).toBe('FL_ERR_PROTO_INVALID_MESSAGE');
    expect((await dev().hello(token, 'no-such-task')).error.code).toBe('FL_ERR_TASK_NOT_FOUND');
  });

  it('states the limits in the session and refuses over-limit and non-plain events with codes, keeping the connection', async () => {
    const d = dev();
    const s = await d.hello(token, 'e');
    expect(s.limits).toEqual({ maxMessageBytes: (1 << 20) + 16 * 1024, maxEventBytes: 16 * 1024, reportEnvelopeBytes: 16 * 1024 });
    const tooBig = await d.send('heartbeat', { t: 1, pad: 'x'.repeat(20_000) });
    expect(tooBig.error.code).toBe('FL_ERR_PROTO_MESSAGE_TOO_LARGE');
    expect(tooBig.error.details).toMatchObject({ event: 'heartbeat', limit: 16 * 1024 });
    // A binary report nobody granted may not be large either.
    const ungranted = await d.send('fit:report', { taskId: 'e', round: 1, numExamples: 1, metrics: {}, codec: 'f32', delta: new Uint8Array(200_000) });
    expect(ungranted.error.code).toBe('FL_ERR_PROTO_MESSAGE_TOO_LARGE');
    // Binary where an object is expected is refused before the schema walks it.
    expect((await d.send('heartbeat', new Uint8Array(1000))).error.code).toBe('FL_ERR_PROTO_INVALID_MESSAGE');
    const nested = await d.send('eval:report', { taskId: 'e', round: 1, numExamples: 1, metrics: Buffer.alloc(2000) });
    expect(nested.error).toMatchObject({ code: 'FL_ERR_PROTO_INVALID_MESSAGE', details: { path: 'metrics' } });
    expect((await d.send('heartbeat', {})).ok).toBe(true);
    expect(d.socket.connected).toBe(true);
  });

  it('caps the transport from the largest plan the server allows, and refuses larger plans and announcements with codes', async () => {
    await expect(app.flotilla.coordinator.createTask({ id: 'huge', preset: 'tiny-mlp', plan: { clientsPerRound: 1, maxUpdateBytes: 2 << 20 } })).rejects.toMatchObject({ code: 'FL_ERR_TASK_INVALID_SPEC' });
    const d = dev();
    await d.hello(token, 'e');
    // A device that asks first learns the limit with a code, before sending anything large.
    const ready = await d.send('fit:ready', { taskId: 'e', round: 1, bytes: 5 << 20 });
    expect(ready.error).toMatchObject({ code: 'FL_ERR_REPORT_TOO_LARGE', details: { limit: 1 << 20 } });
    // One that does not is cut off by the transport cap.
    const gone = new Promise<string>((resolve) => d.socket.once('disconnect', (r) => resolve(r)));
    d.socket.emit('fit:report', { taskId: 'e', round: 1, numExamples: 1, metrics: {}, codec: 'f32', delta: new Uint8Array(2 << 20) });
    expect(await gone).toMatch(/transport close|transport error/);
  });

  it('counts every event, unknown ones included, against the connection token bucket', async () => {
    const s = await startServer({ deviceRateLimit: { burst: 20, perSecond: 10 } });
    try {
      await s.app.flotilla.coordinator.createTask({ id: 'r', preset: 'tiny-mlp', plan: { clientsPerRound: 5 } });
      const d = new RawDevice(s.url);
      await d.hello(s.app.flotilla.deviceToken, 'r');
      const acks = await Promise.all(Array.from({ length: 200 }, (_, i) => d.send(`junk-${i}`, {})));
      const limited = acks.filter((a) => a.error.code === 'FL_ERR_PROTO_RATE_LIMITED').length;
      expect(limited).toBeGreaterThanOrEqual(150);
      expect(acks.filter((a) => a.error.code === 'FL_ERR_PROTO_UNKNOWN_EVENT').length).toBe(200 - limited);
      d.close();
    } finally {
      await s.app.close();
    }
  });

  it('answers events without a payload or with an extra argument with a coded ack', async () => {
    const d = dev();
    await d.hello(token, 'e');
    for (const event of ['heartbeat', 'fit:ready', 'fit:report', 'fit:failure', 'eval:report']) {
      const none = await d.socket.timeout(10_000).emitWithAck(event);
      expect(none.error.code, event).toBe('FL_ERR_PROTO_INVALID_MESSAGE');
      const extra = await d.socket.timeout(10_000).emitWithAck(event, {}, 'extra');
      expect(extra.error.code, event).toBe('FL_ERR_PROTO_INVALID_MESSAGE');
      expect(extra.error.details.why).toMatch(/exactly one payload/);
    }
  });

  it('throttles failed handshakes per address like failed REST calls, and still admits valid credentials', async () => {
    const s = await startServer({ authRateLimit: { max: 5, timeWindowMs: 60_000 } });
    try {
      await s.app.flotilla.coordinator.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 5 } });
      const codes: string[] = [];
      for (let i = 0; i < 8; i++) codes.push((await new RawDevice(s.url).hello(`wrong-${i}`, 't')).error.code);
      expect(codes.slice(0, 5)).toEqual(Array(5).fill('FL_ERR_AUTH_INVALID_TOKEN'));
      expect(codes.slice(5)).toEqual(Array(3).fill('FL_ERR_AUTH_THROTTLED'));
      const throttled = await new RawDevice(s.url).hello('wrong', 't');
      expect(throttled.error.details.retryAfterSeconds).toBeGreaterThan(0);
      // The same address shares the budget over REST, and valid credentials pass on both.
      const rest = await fetch(`${s.url}/api/v1/tasks`, { headers: { authorization: 'Bearer wrong' } });
      expect(rest.status).toBe(429);
      expect(((await rest.json()) as any).error.code).toBe('FL_ERR_AUTH_THROTTLED');
      expect((await fetch(`${s.url}/api/v1/tasks`, { headers: { authorization: `Bearer ${s.app.flotilla.adminToken}` } })).status).toBe(200);
      const ok = new RawDevice(s.url);
      expect((await ok.hello(s.app.flotilla.deviceToken, 't')).ok).toBe(true);
      ok.close();
    } finally {
      await s.app.close();
    }
  });

  it('with trustProxy, throttles the handshake client named by X-Forwarded-For', async () => {
    const s = await startServer({ authRateLimit: { max: 2, timeWindowMs: 60_000 }, trustProxy: 'loopback' });
    try {
      await s.app.flotilla.coordinator.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 5 } });
      const from = async (ip: string) => {
        const socket = ioClient(s.url, { transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { 'x-forwarded-for': ip }, auth: { protocolVersion: PROTOCOL_VERSION, token: 'wrong', taskId: 't' } });
        const err = await new Promise<any>((resolve) => socket.once('connect_error', (e: any) => resolve(e.data)));
        socket.disconnect();
        return err.code;
      };
      expect([await from('203.0.113.1'), await from('203.0.113.1'), await from('203.0.113.1')]).toEqual(['FL_ERR_AUTH_INVALID_TOKEN', 'FL_ERR_AUTH_INVALID_TOKEN', 'FL_ERR_AUTH_THROTTLED']);
      expect(await from('203.0.113.2')).toBe('FL_ERR_AUTH_INVALID_TOKEN');
    } finally {
      await s.app.close();
    }
  });

  it('requires fit:ready before fit:report, gives unasked evaluations their own code, and lets a rejected report be resent', async () => {
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'q', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, roundDeadlineMs: 600_000, maxUpdateBytes: 4096 } });
    const [a, b] = [dev(), dev()];
    await a.hello(token, 'q');
    await b.hello(token, 'q');
    await co.startTask('q');
    await a.instruction(1);
    const good = f32Codec.encode(new Float32Array(195).fill(0.01));
    const rep = (delta: Uint8Array) => ({ taskId: 'q', round: 1, numExamples: 5, metrics: {}, codec: 'f32', delta });
    expect((await a.send('fit:report', rep(good))).error.code).toBe('FL_ERR_PROTO_UPLOAD_NOT_GRANTED');
    // More than the grant is refused, and so is an evaluation nobody asked for.
    expect((await a.send('fit:ready', { taskId: 'q', round: 1, bytes: 100 })).ok).toBe(true);
    expect((await a.send('fit:report', rep(good))).error.code).toBe('FL_ERR_REPORT_TOO_LARGE');
    expect((await a.send('eval:report', { taskId: 'q', round: 1, numExamples: 1, metrics: { accuracy: 1 } })).error.code).toBe('FL_ERR_EVAL_NOT_REQUESTED');
    // A report rejected for its content does not use up the device's place: ask again and resend.
    expect((await a.report(rep(good.subarray(0, 40)))).error.code).toBe('FL_ERR_CODEC_CORRUPT');
    expect((await a.report(rep(good))).ok).toBe(true);
    expect((await b.report(rep(good))).ok).toBe(true);
    await waitFor(() => co.getRunner('q').record.currentVersion === 2, 'the round to commit');
  });
});

describe('socket edge under load', () => {
  it('keeps /healthz answering while hostile sockets push junk (figures printed)', async () => {
    const { app, url } = await startServer({ maxUpdateBytes: 4 << 20, unauthenticatedTimeoutMs: 1000 });
    let child: ChildProcess | null = null;
    try {
      await app.flotilla.coordinator.createTask({ id: 'h', preset: 'tiny-mlp', plan: { clientsPerRound: 50, maxUpdateBytes: 4 << 20 } });
      const probe = async () => {
        const t0 = performance.now();
        const res = await fetch(`${url}/healthz`);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        return performance.now() - t0;
      };
      const quiet: number[] = [];
      for (let i = 0; i < 10; i++) quiet.push(await probe());
      // 4 unauthenticated sockets sending 3 MiB frames before any handshake, 4 authenticated ones sending
      // oversize events, binary where objects belong and unknown events, from another process.
      const proc = spawn(process.execPath, [HOSTILE, url, app.flotilla.deviceToken, 'h', String(PROTOCOL_VERSION)], { stdio: ['ignore', 'pipe', 'inherit'] });
      child = proc;
      let out = '';
      proc.stdout!.on('data', (b) => (out += String(b)));
      // No wall-clock bound of its own: on a loaded machine the attacker's process may take long to get going.
      await waitFor(() => out.includes('started'), 'the hostile sockets to get going', 240_000);
      const loaded: number[] = [];
      for (let i = 0; i < 10; i++) loaded.push(await probe());
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
      child = null;
      const counts = JSON.parse(out.trim().split('\n').pop()!);
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
      console.log(
        `[socket-edge] /healthz ms: quiet median ${median(quiet).toFixed(1)}; under 4 unauthenticated + 4 authenticated hostile sockets ` +
          `median ${median(loaded).toFixed(1)}, max ${Math.max(...loaded).toFixed(1)} (ratio ${(median(loaded) / median(quiet)).toFixed(2)}); ` +
          `${counts.preAuthFrames} pre-auth 3 MiB frames, ${counts.events} hostile events in all; server rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
      );
      expect(loaded).toHaveLength(10);
      expect(counts.events).toBeGreaterThan(0);
    } finally {
      child?.kill('SIGKILL');
      await app.close();
    }
  }, 400_000);
});
