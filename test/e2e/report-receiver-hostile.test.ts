import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f32Codec, type FitUpload } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { sendReport } from '../helpers/raw-round.js';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * The dedicated report receiver (server/src/http/upload-connection.ts) against hostile clients on
 * raw TCP sockets, on the HTTP server's own port: malformed heads refused with their codes and the
 * connection closed; slow heads and stalled bodies timed out while other uploads go on; bodies
 * shorter or longer than declared; pipelined requests refused; other requests (REST, socket.io)
 * still reaching Node's http server on the same port. The round is unchanged by every refusal.
 */
const P = 195; // tiny-mlp
const META = JSON.stringify({ numExamples: 10, metrics: { loss: 1 }, codec: 'f32' });
const good = f32Codec.encode(new Float32Array(P).map((_, i) => ((i % 17) - 8) * 1e-3));

type Answer = { status: number; headers: Record<string, string>; json: any };

/** A raw TCP client that reads HTTP/1.1 answers (each with a Content-Length) as they come. */
class RawConn {
  private buf = Buffer.alloc(0);
  private wake: Array<() => void> = [];
  closed = false;
  private constructor(readonly s: Socket) {
    const poke = () => this.wake.splice(0).forEach((f) => f());
    s.on('data', (c: Buffer) => ((this.buf = Buffer.concat([this.buf, c])), poke()));
    s.on('close', () => ((this.closed = true), poke()));
    s.on('error', () => undefined);
  }
  static open(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }
  write(x: string | Uint8Array): this {
    this.s.write(x);
    return this;
  }
  /** The next complete answer, or null when the server closed the connection first. */
  async answer(): Promise<Answer | null> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const [statusLine, ...lines] = this.buf.toString('latin1', 0, end).split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const n = Number(headers['content-length']);
        if (this.buf.length >= end + 4 + n) {
          const body = this.buf.toString('utf8', end + 4, end + 4 + n);
          this.buf = this.buf.subarray(end + 4 + n);
          return { status: Number(statusLine.split(' ')[1]), headers, json: JSON.parse(body) };
        }
      }
      if (this.closed) return null;
      await new Promise<void>((r) => this.wake.push(r));
    }
  }
  async closedByServer(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.wake.push(r));
  }
}

const uploadHead = (path: string, length: number, extra = '') =>
  `PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\nX-Flotilla-Report: ${META}\r\n${extra}\r\n`;

describe('dedicated report receiver against hostile clients', () => {
  let app: FlotillaApp;
  let url: string;
  let port: number;
  const devs: Array<{ d: RawDevice; offers: Map<number, string> }> = [];
  const offer = async (i: number, round: number) => {
    while (!devs[i].offers.has(round)) await new Promise((r) => setTimeout(r, 10));
    return devs[i].offers.get(round)!;
  };
  const round = () => app.flotilla.coordinator.getRunner('h').currentRound!;
  const rejected = (code: string) => app.flotilla.coordinator.stats.rejected[code as 'FL_ERR_INTERNAL'] ?? 0;

  beforeAll(async () => {
    ({ app, url } = await startServer({ reconnectGraceMs: 60_000, reportReceiver: 'direct', reportReceiverLimits: { headerTimeoutMs: 1000, bodyIdleTimeoutMs: 1000 } }));
    port = Number(new URL(url).port);
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'h', preset: 'tiny-mlp', plan: { clientsPerRound: 3, overSelect: 1, minReports: 3, maxRounds: 5, roundDeadlineMs: 120_000 } });
    // socket.io (websocket upgrade) on the same port: the receiver hands these connections to Node's http server.
    for (let i = 0; i < 3; i++) {
      const d = new RawDevice(url);
      expect((await d.hello(app.flotilla.deviceToken, 'h')).ok).toBe(true);
      const offers = new Map<number, string>();
      d.socket.on('fit:upload', (m: FitUpload) => offers.set(m.round, m.url));
      devs.push({ d, offers });
    }
    await co.startTask('h');
  });
  afterAll(async () => {
    devs.forEach(({ d }) => d.socket.disconnect());
    await app?.close();
  });

  it('refuses malformed heads with their codes, counts them and closes the connection', async () => {
    const T = 'eyJ0IjoiaCJ9.c2ln';
    const cases: Array<[string, number, string]> = [
      [`PUT /api/v1/devices/reports/${T} HTTP/1.0\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\n\r\nx`, 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [`PUT /api/v1/devices/reports/${T}?a=1 HTTP/1.1\r\nHost: a\r\n\r\n`, 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [`PUT /api/v1/devices/reports/${T} HTTP/1.1\nHost: a\n\n`, 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4, ' folded: line\r\n'), 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4, 'Bad Name: x\r\n'), 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4, 'Content-Length: 4\r\n'), 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4).replace('Content-Length: 4', 'Content-Length: +4'), 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4).replace('Content-Length: 4', 'Content-Length: 4x'), 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4).replace('Host: 127.0.0.1\r\n', ''), 400, 'FL_ERR_HTTP_BAD_REQUEST'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4).replace('Content-Length: 4\r\n', ''), 411, 'FL_ERR_HTTP_LENGTH_REQUIRED'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4).replace('Content-Length: 4', 'Transfer-Encoding: chunked') + '4\r\nabcd\r\n0\r\n\r\n', 411, 'FL_ERR_HTTP_LENGTH_REQUIRED'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4, `X-Pad: ${'p'.repeat(9000)}\r\n`), 431, 'FL_ERR_HTTP_HEADERS_TOO_LARGE'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 4).replace('application/octet-stream', 'text/plain'), 415, 'FL_ERR_HTTP_UNSUPPORTED_MEDIA'],
      [uploadHead(`/api/v1/devices/reports/${T}`, 999_999_999_999), 413, 'FL_ERR_REPORT_TOO_LARGE'],
    ];
    for (const [bytes, status, code] of cases) {
      const before = rejected(code);
      const c = await RawConn.open(port);
      const a = await c.write(bytes).answer();
      expect([a?.status, a?.json.ok, a?.json.error.code, a?.headers.connection], bytes.slice(0, 80)).toEqual([status, false, code, 'close']);
      await c.closedByServer();
      expect(rejected(code)).toBe(before + 1);
    }
    expect(round().reported.size).toBe(0);
  });

  it('keeps a connection for the next request after a refusal whose body it drained; a request that is not an upload goes to fastify for good', async () => {
    const c = await RawConn.open(port);
    // A forged token: refused before the body is read; the body is drained and the connection stays open.
    const a = await c.write(uploadHead('/api/v1/devices/reports/not-a-token', good.byteLength)).write(good).answer();
    expect([a?.status, a?.json.error.code, a?.headers.connection]).toEqual([401, 'FL_ERR_REPORT_TOKEN_INVALID', 'keep-alive']);
    const h = await c.write('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n').answer();
    expect([h?.status, h?.json]).toEqual([200, { status: 'ok' }]);
    // Node's http server owns the connection now: a later upload on it is fastify's route (which takes chunked bodies).
    const u = await c.write(uploadHead('/api/v1/devices/reports/not-a-token', 3).replace('Content-Length: 3', 'Transfer-Encoding: chunked') + '3\r\nabc\r\n0\r\n\r\n').answer();
    expect([u?.status, u?.json.error.code]).toEqual([401, 'FL_ERR_REPORT_TOKEN_INVALID']);
    c.s.destroy();
  });

  it('times out a client that stops mid-header (and closes an idle one) while other uploads go on', async () => {
    const slow = await RawConn.open(port);
    slow.write(`PUT /api/v1/devices/reports/x HTTP/1.1\r\nHost: a\r\n`);
    const idle = await RawConn.open(port);
    const up = await RawConn.open(port);
    const ok = await up.write(uploadHead(await offer(0, 1), good.byteLength)).write(good).answer();
    expect(ok?.json).toEqual({ ok: true });
    const t = await slow.answer();
    expect([t?.status, t?.json.error.code, t?.headers.connection]).toEqual([408, 'FL_ERR_HTTP_TIMEOUT', 'close']);
    await slow.closedByServer();
    expect(await idle.answer()).toBeNull();
    up.s.destroy();
    expect(round().reported.size).toBe(1);
  });

  it('times out a stalled body, refuses a body cut short by a client gone, and answers a longer one then refuses the extra bytes as a pipelined request', async () => {
    const u1 = await offer(1, 1);
    const stalled = await RawConn.open(port);
    const t = await stalled.write(uploadHead(u1, good.byteLength)).write(good.subarray(0, 100)).answer();
    expect([t?.status, t?.json.error.code, t?.headers.connection]).toEqual([408, 'FL_ERR_HTTP_TIMEOUT', 'close']);
    await stalled.closedByServer();
    expect(round().reported.size).toBe(1);
    expect(round().gate.inFlight).toBe(0);

    const truncatedBefore = rejected('FL_ERR_REPORT_TRUNCATED');
    const gone = await RawConn.open(port);
    gone.write(uploadHead(await offer(2, 1), good.byteLength)).write(good.subarray(0, 300));
    gone.s.end();
    await gone.closedByServer();
    while (rejected('FL_ERR_REPORT_TRUNCATED') === truncatedBefore) await new Promise((r) => setTimeout(r, 20));
    expect(round().reported.size).toBe(1);
    expect(round().gate.inFlight).toBe(0);

    // Both tokens are spent (the truncated upload used its own): the two devices report over the socket.
    const done = nextEvent<RoundRecord>(app.flotilla.coordinator.events, 'round', (r) => r.taskId === 'h' && r.round === 1);
    for (const i of [1, 2]) expect((await sendReport(devs[i].d, 'h', 1, new Float32Array(P).fill(1e-3))).ok).toBe(true);
    expect((await done).state).toBe('done');

    // Round 2: a body longer than declared. The declared bytes are the report; the rest is a next request sent before the answer.
    const pipelinedBefore = rejected('FL_ERR_HTTP_PIPELINED');
    const long = await RawConn.open(port);
    long.write(Buffer.concat([Buffer.from(uploadHead(await offer(0, 2), good.byteLength)), good, Buffer.from('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')]));
    const [first, second] = [await long.answer(), await long.answer()];
    expect(first?.json).toEqual({ ok: true });
    expect([second?.status, second?.json.error.code, second?.headers.connection]).toEqual([400, 'FL_ERR_HTTP_PIPELINED', 'close']);
    await long.closedByServer();
    expect(rejected('FL_ERR_HTTP_PIPELINED')).toBe(pipelinedBefore + 1);

    // Two complete uploads in one write: the first is answered, the second refused unread (its device's report not folded).
    const pipe = await RawConn.open(port);
    pipe.write(Buffer.concat([Buffer.from(uploadHead(await offer(1, 2), good.byteLength)), good, Buffer.from(uploadHead(await offer(2, 2), good.byteLength)), good]));
    const [p1, p2] = [await pipe.answer(), await pipe.answer()];
    expect(p1?.json).toEqual({ ok: true });
    expect([p2?.status, p2?.json.error.code]).toEqual([400, 'FL_ERR_HTTP_PIPELINED']);
    await pipe.closedByServer();
    expect(round().reported.size).toBe(2);
    expect(round().gate.inFlight).toBe(0);
    // The refused device still uploads its report, on a new connection.
    const again = await RawConn.open(port);
    expect((await again.write(uploadHead(await offer(2, 2), good.byteLength)).write(good).answer())?.json).toEqual({ ok: true });
    again.s.destroy();
  });
});
