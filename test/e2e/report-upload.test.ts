import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f32Codec, REPORT_META_HEADER, type FitUpload } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { sendReport } from '../helpers/raw-round.js';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * The report upload channel (docs/protocol.md, "Report upload") over real HTTP and socket.io on
 * loopback: the same reports give the same committed model as fit:report, and every refusal is
 * coded, leaves the round unchanged, and leaves the device free to report over the socket. One
 * contract, run over both receivers (docs/cluster.md, "The report upload channel"): the direct
 * reader on the same port (http/upload-connection.ts) and the fastify route.
 */
const RECEIVERS = ['direct', 'fastify'] as const;
const P = 195; // tiny-mlp
const meta = (numExamples = 10) => JSON.stringify({ numExamples, metrics: { loss: 1 }, codec: 'f32' });
const delta = (seed: number) => new Float32Array(P).map((_, i) => ((i * 7 + seed * 13) % 17 - 8) * 1e-3);

async function put(base: string, path: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(new URL(path, base), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', [REPORT_META_HEADER]: meta(), ...headers }, body: body as Uint8Array<ArrayBuffer> });
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  return { status: res.status, json: await res.json(), headers: res.headers };
}

/** A device whose `fit:upload` offers are kept per round. */
async function device(url: string, token: string, taskId: string): Promise<{ d: RawDevice; offers: Map<number, string> }> {
  const d = new RawDevice(url);
  expect((await d.hello(token, taskId)).ok).toBe(true);
  const offers = new Map<number, string>();
  d.socket.on('fit:upload', (m: FitUpload) => offers.set(m.round, m.url));
  return { d, offers };
}

async function offer(offers: Map<number, string>, round: number): Promise<string> {
  while (!offers.has(round)) await new Promise((r) => setTimeout(r, 10));
  return offers.get(round)!;
}

describe.each(RECEIVERS)('report upload channel (%s receiver)', (reportReceiver) => {
  let app: FlotillaApp;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startServer({ reconnectGraceMs: 60_000, reportReceiver }));
  });
  afterAll(async () => app?.close());

  it('commits the same model as fit:report for the same reports', async () => {
    const co = app.flotilla.coordinator;
    const plan = { clientsPerRound: 3, overSelect: 1, minReports: 3, maxRounds: 1, roundDeadlineMs: 60_000 };
    const a = await co.createTask({ id: 'via-upload', preset: 'tiny-mlp', plan });
    const w0 = co.getRunner('via-upload').globalWeights;
    await co.createTask({ id: 'via-socket', spec: a.spec, weights: w0, plan });
    const results: Float32Array[] = [];
    for (const [task, upload] of [['via-upload', true], ['via-socket', false]] as const) {
      const devs = [];
      for (let i = 0; i < 3; i++) devs.push(await device(url, app.flotilla.deviceToken, task));
      const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === task);
      await co.startTask(task);
      const acks = await Promise.all(devs.map(async ({ d, offers }, i) => {
        await d.instruction(1);
        const body = f32Codec.encode(delta(i));
        if (!upload) return sendReport(d, task, 1, delta(i), { numExamples: 10 * (i + 1) });
        return (await put(url, await offer(offers, 1), body, { [REPORT_META_HEADER]: meta(10 * (i + 1)) })).json;
      }));
      expect(acks.every((x) => x.ok), JSON.stringify(acks)).toBe(true);
      expect((await done).state).toBe('done');
      results.push(co.getRunner(task).globalWeights);
      devs.forEach(({ d }) => d.socket.disconnect());
    }
    expect(Array.from(results[0])).toEqual(Array.from(results[1]));
    expect(Array.from(results[0])).not.toEqual(Array.from(w0));
    expect(co.stats.reportsUploaded).toBe(3);
  });

  it('refuses bad, forged, reused, late, oversize, non-finite and truncated uploads with their codes, changing nothing', async () => {
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'bad', preset: 'tiny-mlp', plan: { clientsPerRound: 3, overSelect: 1, minReports: 3, maxRounds: 5, roundDeadlineMs: 60_000, maxUpdateBytes: 4096 } });
    const devs = [];
    for (let i = 0; i < 3; i++) devs.push(await device(url, app.flotilla.deviceToken, 'bad'));
    const r1 = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'bad' && r.round === 1);
    await co.startTask('bad');
    const good = f32Codec.encode(delta(1));
    const u1 = await Promise.all(devs.map(({ offers }) => offer(offers, 1)));
    for (const u of u1) expect((await put(url, u, good)).json.ok).toBe(true);
    expect((await r1).state).toBe('done');

    const runner = co.getRunner('bad');
    const r2 = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'bad' && r.round === 2);
    const u2 = await Promise.all(devs.map(({ offers }) => offer(offers, 2)));
    const round = () => runner.currentRound!;
    const sumBefore = Array.from((round().aggregator as any).exportPartial().sum as Float64Array);
    // Garbage and forged tokens.
    let res = await put(url, '/api/v1/devices/reports/not-a-token', good);
    expect([res.status, res.json.error.code]).toEqual([401, 'FL_ERR_REPORT_TOKEN_INVALID']);
    const [body] = u2[0].split('/').pop()!.split('.');
    res = await put(url, `/api/v1/devices/reports/${body}.${'A'.repeat(43)}`, good);
    expect([res.status, res.json.error.code]).toEqual([401, 'FL_ERR_REPORT_TOKEN_INVALID']);
    // A round-1 token in round 2.
    res = await put(url, u1[0], good);
    expect([res.status, res.json.error.code]).toEqual([409, 'FL_ERR_ROUND_LATE_REPORT']);
    // Non-finite values, then the same token again.
    const nan = delta(2);
    nan[100] = NaN;
    res = await put(url, u2[0], f32Codec.encode(nan));
    expect([res.status, res.json.error.code]).toEqual([400, 'FL_ERR_REPORT_NON_FINITE']);
    res = await put(url, u2[0], good);
    expect([res.status, res.json.error.code]).toEqual([409, 'FL_ERR_REPORT_TOKEN_USED']);
    // Larger than the plan's maxUpdateBytes (declared in Content-Length).
    res = await put(url, u2[1], new Uint8Array(5000));
    expect([res.status, res.json.error.code]).toEqual([413, 'FL_ERR_REPORT_TOO_LARGE']);
    expect(res.headers.get('connection')).toBe('close');
    // Missing report header.
    res = await put(url, u2[2], good, { [REPORT_META_HEADER]: 'nope' });
    expect([res.status, res.json.error.code]).toEqual([400, 'FL_ERR_PROTO_INVALID_MESSAGE']);
    expect(round().reported.size).toBe(0);
    expect(round().gate.inFlight).toBe(0);
    expect(Array.from((round().aggregator as any).exportPartial().sum as Float64Array)).toEqual(sumBefore);
    // The socket path still takes each device's report.
    for (const { d } of devs) expect((await sendReport(d, 'bad', 2, delta(1))).ok).toBe(true);
    expect((await r2).state).toBe('done');

    // Round 3: a body streamed past the limit without Content-Length, and a client that aborts mid-body.
    const u3 = await Promise.all(devs.map(({ offers }) => offer(offers, 3)));
    const chunked = await new Promise<{ status: number; json: any }>((resolve, reject) => {
      const req = request(new URL(u3[0], url), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', [REPORT_META_HEADER]: meta() } }, (r) => {
        let s = '';
        r.on('data', (c) => (s += c)).on('end', () => resolve({ status: r.statusCode!, json: JSON.parse(s) }));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(new Uint8Array(1000));
      req.end();
    });
    // The direct reader takes bodies with one Content-Length only: a chunked one is refused before it is read.
    expect([chunked.status, chunked.json.error.code]).toEqual(reportReceiver === 'direct' ? [411, 'FL_ERR_HTTP_LENGTH_REQUIRED'] : [413, 'FL_ERR_REPORT_TOO_LARGE']);
    const rejectedBefore = co.stats.rejected.FL_ERR_REPORT_TRUNCATED ?? 0;
    await new Promise<void>((resolve) => {
      const req = request(new URL(u3[1], url), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(good.byteLength), [REPORT_META_HEADER]: meta() } });
      req.on('error', () => resolve());
      req.write(good.subarray(0, 300), () => setTimeout(() => req.destroy(), 100));
    });
    while ((co.stats.rejected.FL_ERR_REPORT_TRUNCATED ?? 0) === rejectedBefore) await new Promise((r) => setTimeout(r, 20));
    expect(round().reported.size).toBe(0);
    expect(round().gate.inFlight).toBe(0);
    // A device not connected here (as when a load balancer sends the upload to another node).
    devs[2].d.socket.disconnect();
    await new Promise((r) => setTimeout(r, 100));
    res = await put(url, u3[2], good);
    expect([res.status, res.json.error.code]).toEqual([421, 'FL_ERR_REPORT_WRONG_NODE']);
    // The server keeps serving: the other two report over the socket.
    for (const { d } of devs.slice(0, 2)) expect((await sendReport(d, 'bad', 3, delta(1))).ok).toBe(true);
    expect(round().reported.size).toBe(2);
  });
});

describe.each(RECEIVERS)('report upload waiting for a slot (%s receiver)', (reportReceiver) => {
  let app: FlotillaApp;
  afterAll(async () => app?.close());

  it('reads the body only once a slot is free, and a device that gave up while waiting leaves nothing held', async () => {
    // tiny-mlp update = 12 + 4 * 195 bytes; a budget of 2000 bytes allows 2 upload slots
    const s = await startServer({ uploadBudgetBytes: 2000, reportReceiver });
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'w', preset: 'tiny-mlp', plan: { clientsPerRound: 3, overSelect: 1, minReports: 3, maxRounds: 1, roundDeadlineMs: 60_000 } });
    const devs = [];
    for (let i = 0; i < 3; i++) devs.push(await device(s.url, app.flotilla.deviceToken, 'w'));
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'w');
    await co.startTask('w');
    const urls = await Promise.all(devs.map(({ offers }) => offer(offers, 1)));
    const good = f32Codec.encode(delta(3));
    const gate = co.getRunner('w').currentRound!.gate;
    // Two devices hold both slots (fit:ready granted); the third device's upload has to wait.
    for (const { d } of devs.slice(0, 2)) expect((await d.send('fit:ready', { taskId: 'w', round: 1, bytes: good.byteLength })).ok).toBe(true);
    const req = request(new URL(urls[2], s.url), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(good.byteLength), [REPORT_META_HEADER]: meta() } });
    req.on('error', () => undefined);
    req.write(good.subarray(0, 100));
    while (gate.queued < 1) await new Promise((r) => setTimeout(r, 10));
    req.destroy(); // gives up while queued
    // The holders report; the queued upload then gets a slot, finds its client gone, and gives the slot back.
    for (const { d } of devs.slice(0, 2)) expect((await d.send('fit:report', { taskId: 'w', round: 1, numExamples: 10, metrics: {}, codec: 'f32', delta: good })).ok).toBe(true);
    while (gate.queued > 0 || gate.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
    expect(co.getRunner('w').currentRound!.reported.size).toBe(2);
    expect((await sendReport(devs[2].d, 'w', 1, delta(3))).ok).toBe(true);
    expect((await done).state).toBe('done');
  });
});
