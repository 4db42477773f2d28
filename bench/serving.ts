/**
 * Serving benchmark: closed-loop load on loopback against the MNIST MLP (784-200-200-10) through
 * the Open Inference Protocol route, in one run:
 *  - unbatched (maxBatchSize 1), batched with the default adaptive delay, and batched with a fixed
 *    delay (Triton's behaviour) at each concurrency, beside an empty fastify route receiving the
 *    same JSON body (the HTTP ceiling);
 *  - 1 and 2 worker-thread model instances against the main thread;
 *  - binary tensors (OIP binary extension) against JSON, each as a share of an empty route
 *    receiving the same bytes;
 *  - a device's heartbeat round-trip on the same server, idle and under saturating inference.
 * Each phase runs `--repeats` times, interleaved; the tables show medians (and the spread).
 *
 *   npx tsx bench/serving.ts [--concurrency 1,4,16,64,256] [--seconds 1.5] [--warmup 0.5] [--repeats 3] [--max-batch 64] [--delay-ms 5] [--chart docs/serving-throughput.svg]
 *
 * The server runs in this thread; the load generator runs in a worker thread (its own event loop)
 * with keep-alive HTTP/1.1 connections, one per concurrent client. Each client sends a one-row
 * request, waits for the answer, and sends the next (closed loop). Latencies are client-side.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import { io } from 'socket.io-client';
import { buildPreset, specOf } from '@flotilla/model';
import { PROTOCOL_VERSION } from '@flotilla/protocol';
import { buildApp, MemoryBlobStore, MemoryStore } from '@flotilla/server';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,4,16,64,256' },
    seconds: { type: 'string', default: '1.5' },
    warmup: { type: 'string', default: '0.5' },
    repeats: { type: 'string', default: '3' },
    'max-batch': { type: 'string', default: '64' },
    'delay-ms': { type: 'string', default: '5' },
    chart: { type: 'string' },
  },
});
const levels = values.concurrency!.split(',').map(Number);
const durationMs = Number(values.seconds) * 1000;
const warmMs = Number(values.warmup) * 1000;

/** Plain-JS closed-loop client (a worker thread evaluates it; no TS loader needed there). */
const LOADGEN = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { port, path, concurrency, warmMs, durationMs, headers } = workerData;
const body = Buffer.from(workerData.body);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const len = body.length;
function once() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers, 'content-length': len } }, (res) => {
      res.resume();
      res.on('end', () => resolve([performance.now() - t0, res.statusCode]));
    });
    req.on('error', () => resolve([performance.now() - t0, 0]));
    req.end(body);
  });
}
(async () => {
  const start = performance.now();
  const measureFrom = start + warmMs;
  const end = measureFrom + durationMs;
  const lat = [];
  const statuses = {};
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const t = performance.now();
      if (t >= end) return;
      const [ms, status] = await once();
      if (t >= measureFrom) { lat.push(ms); statuses[status] = (statuses[status] || 0) + 1; }
    }
  }));
  agent.destroy();
  parentPort.postMessage({ lat, statuses, seconds: durationMs / 1000 });
})();
`;

interface PhaseResult {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  statuses: Record<string, number>;
}

interface Body {
  bytes: Uint8Array;
  headers: Record<string, string>;
}

function runLoad(port: number, path: string, body: Body, concurrency: number): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOADGEN, { eval: true, workerData: { port, path, body: body.bytes, headers: body.headers, concurrency, warmMs, durationMs } });
    w.once('error', reject);
    w.once('message', (m: { lat: number[]; statuses: Record<string, number>; seconds: number }) => {
      const lat = Float64Array.from(m.lat).sort();
      const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)] : NaN);
      const ok = m.statuses['200'] ?? 0;
      resolve({ rps: ok / m.seconds, p50: q(0.5), p95: q(0.95), p99: q(0.99), statuses: m.statuses });
      void w.terminate();
    });
  });
}

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};
const quantile = (xs: number[], p: number) => {
  const a = Float64Array.from(xs).sort();
  return a.length ? a[Math.min(a.length - 1, Math.ceil(p * a.length) - 1)] : NaN;
};

interface Phase {
  key: string;
  conc: number;
  port: () => number;
  path: string;
  body: () => Body;
}

async function main(): Promise<void> {
  const app = await buildApp({ store: new MemoryStore(), blobs: new MemoryBlobStore(), publicInference: true, processMetrics: false, authRateLimit: false });
  const preset = buildPreset('mnist-mlp');
  const { spec, weights } = specOf(preset.model, preset.numClasses);
  preset.model.dispose();
  const serving = app.flotilla.serving;
  const maxBatch = Number(values['max-batch']);
  const delay = Number(values['delay-ms']);
  // The same weights once per configuration: batching settings belong to a loaded version.
  const configs = {
    unbatched: { maxBatchSize: 1, maxQueueDelayMs: 0 },
    batched: { maxBatchSize: maxBatch, maxQueueDelayMs: delay },
    fixed: { maxBatchSize: maxBatch, maxQueueDelayMs: delay, delay: 'fixed' as const },
    inst1: { maxBatchSize: maxBatch, maxQueueDelayMs: delay, instances: 1 },
    inst2: { maxBatchSize: maxBatch, maxQueueDelayMs: delay, instances: 2 },
  };
  let version = 0;
  for (const [name, batching] of Object.entries(configs)) {
    await app.flotilla.registry.publish({ model: 'mnist', spec, weights });
    version++;
    await serving.createDeployment({ name, model: 'mnist', routing: { mode: 'split', targets: [{ ref: String(version) }] }, batching: { ...batching, maxQueueSize: 100_000 } });
  }
  await app.flotilla.coordinator.createTask({ id: 'hb', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;

  const empty = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
  empty.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, b, done) => done(null, b));
  empty.post('/empty', async () => ({}));
  await empty.listen({ port: 0, host: '127.0.0.1' });
  const emptyPort = (empty.server.address() as { port: number }).port;

  let seed = 1;
  const pixel = () => ((seed = (seed * 16807) % 2147483647) % 1000) / 1000;
  const image = Array.from({ length: 784 }, pixel);
  const jsonBody: Body = { bytes: Buffer.from(JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', data: image }] })), headers: {} };
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 784 * 4 } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
  const binBody: Body = {
    bytes: Buffer.concat([head, Buffer.from(Float32Array.from(image).buffer)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
  };
  console.log(`serving bench: MNIST MLP, backend ${serving.backendName}, JSON body ${jsonBody.bytes.length} B, binary body ${binBody.bytes.length} B, ${durationMs / 1000} s per phase after ${warmMs / 1000} s warm-up, ${values.repeats} repeats (medians)`);
  console.log(`batched: maxBatchSize ${maxBatch}, maxQueueDelayMs ${delay} (adaptive; 'fixed' waits it out); unbatched: maxBatchSize 1; inst1/inst2: batched on 1/2 worker-thread instances`);

  const srv = () => port;
  const emp = () => emptyPort;
  const phases: Phase[] = [];
  for (const c of levels) {
    phases.push({ key: 'empty', conc: c, port: emp, path: '/empty', body: () => jsonBody });
    for (const name of ['unbatched', 'batched', 'fixed']) phases.push({ key: name, conc: c, port: srv, path: `/v2/models/${name}/infer`, body: () => jsonBody });
  }
  const top = levels.filter((c) => c >= 16);
  for (const c of top) for (const name of ['inst1', 'inst2']) phases.push({ key: name, conc: c, port: srv, path: `/v2/models/${name}/infer`, body: () => jsonBody });
  for (const c of top) {
    phases.push({ key: 'empty-binary', conc: c, port: emp, path: '/empty', body: () => binBody });
    phases.push({ key: 'batched-binary', conc: c, port: srv, path: '/v2/models/batched/infer', body: () => binBody });
  }

  const results = new Map<string, PhaseResult[]>();
  const heartbeats: Record<string, number[][]> = { idle: [], 'main thread busy': [], '2 instances busy': [] };
  const repeats = Number(values.repeats);
  for (let rep = 0; rep < repeats; rep++) {
    for (const p of phases) {
      const r = await runLoad(p.port(), p.path, p.body(), p.conc);
      const k = `${p.key}@${p.conc}`;
      results.set(k, [...(results.get(k) ?? []), r]);
    }
    heartbeats.idle.push(await heartbeatRtts(port, app.flotilla.deviceToken, null));
    heartbeats['main thread busy'].push(await heartbeatRtts(port, app.flotilla.deviceToken, runLoad(port, '/v2/models/batched/infer', jsonBody, 64)));
    heartbeats['2 instances busy'].push(await heartbeatRtts(port, app.flotilla.deviceToken, runLoad(port, '/v2/models/inst2/infer', jsonBody, 64)));
    console.log(`repeat ${rep + 1}/${repeats} done`);
  }

  const med = (key: string, conc: number) => {
    const rs = results.get(`${key}@${conc}`)!;
    return { rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), lo: Math.min(...rs.map((r) => r.rps)), hi: Math.max(...rs.map((r) => r.rps)), bad: rs.reduce((n, r) => n + Object.entries(r.statuses).filter(([st]) => st !== '200').reduce((m, [, v]) => m + v, 0), 0) };
  };
  const cell = (m: ReturnType<typeof med>) => `${m.rps.toFixed(0)} [${m.lo.toFixed(0)}-${m.hi.toFixed(0)}] (${m.p50.toFixed(1)}/${m.p99.toFixed(1)})${m.bad ? ` non-200:${m.bad}` : ''}`;
  console.log('\n| conc | empty route req/s | unbatched req/s [min-max] (p50/p99 ms) | batched adaptive | batched fixed delay | adaptive/unbatched | p99 adaptive/unbatched | fixed/unbatched |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const c of levels) {
    const [e, u, b, f] = ['empty', 'unbatched', 'batched', 'fixed'].map((k) => med(k, c));
    console.log(`| ${c} | ${e.rps.toFixed(0)} | ${cell(u)} | ${cell(b)} | ${cell(f)} | ${(b.rps / u.rps).toFixed(2)}x | ${(b.p99 / u.p99).toFixed(2)} | ${(f.rps / u.rps).toFixed(2)}x |`);
  }
  console.log('\n| conc | main thread req/s (p50/p99) | 1 instance | 2 instances | 2 / 1 instances | 2 instances / main |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const c of top) {
    const [b, i1, i2] = ['batched', 'inst1', 'inst2'].map((k) => med(k, c));
    console.log(`| ${c} | ${cell(b)} | ${cell(i1)} | ${cell(i2)} | ${(i2.rps / i1.rps).toFixed(2)}x | ${(i2.rps / b.rps).toFixed(2)}x |`);
  }
  console.log('\n| conc | JSON: batched / empty route (JSON body) | binary: batched / empty route (binary body) | binary req/s / JSON req/s |');
  console.log('| --- | --- | --- | --- |');
  for (const c of top) {
    const [e, b, eb, bb] = ['empty', 'batched', 'empty-binary', 'batched-binary'].map((k) => med(k, c));
    console.log(`| ${c} | ${(b.rps / e.rps).toFixed(2)} (${b.rps.toFixed(0)} / ${e.rps.toFixed(0)}) | ${(bb.rps / eb.rps).toFixed(2)} (${bb.rps.toFixed(0)} / ${eb.rps.toFixed(0)}) | ${(bb.rps / b.rps).toFixed(2)}x |`);
  }
  console.log('\n| heartbeat round trip | p50 ms | p99 ms | max ms | (medians over repeats) |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [name, runs] of Object.entries(heartbeats)) {
    console.log(`| ${name} | ${median(runs.map((r) => quantile(r, 0.5))).toFixed(2)} | ${median(runs.map((r) => quantile(r, 0.99))).toFixed(2)} | ${median(runs.map((r) => Math.max(...r))).toFixed(2)} | ${runs.map((r) => r.length).join('/')} beats |`);
  }
  if (values.chart) {
    const share = (key: string) => levels.map((c) => ({ x: c, y: med(key, c).rps / med('empty', c).rps }));
    const series = [
      { name: 'unbatched', points: share('unbatched') },
      { name: 'batched, adaptive delay (default)', points: share('batched') },
      { name: 'batched, fixed 5 ms delay', points: share('fixed') },
    ];
    writeFileSync(
      values.chart,
      renderAccuracyChart({
        title: 'Serving throughput as a share of an empty route (MNIST MLP, JSON, medians)',
        subtitle: `bench/serving.ts, ${repeats} repeats of ${durationMs / 1000} s, 2 shared cores`,
        series,
        xScale: 'log10',
        xLabel: 'concurrent clients',
        xUnit: 'clients',
        yLabel: 'req/s / empty-route req/s',
        yMin: 0,
      }),
    );
    console.log(`chart: ${values.chart}`);
  }
  const info = serving.servingStats().models.find((m) => m.version === 2)!;
  console.log(`\nbatched version: ${info.batcher.batches} batches, delay mode now ${info.batcher.delayMode}; inst2 restarts: ${serving.servingStats().models.find((m) => m.version === 5)?.instances?.restarts}`);
  await empty.close();
  await app.close();
}

/** Heartbeat round trips of one device on the server while `load` (if any) runs. */
async function heartbeatRtts(port: number, token: string, load: Promise<PhaseResult> | null): Promise<number[]> {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true });
  const hello = await socket.timeout(30_000).emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, token, taskId: 'hb' });
  if (!hello.ok) throw new Error(`hello refused: ${JSON.stringify(hello)}`);
  const rtts: number[] = [];
  const start = performance.now();
  // Measure inside the load's measured window (after its warm-up), or for as long without load.
  while (performance.now() - start < warmMs) await new Promise((r) => setTimeout(r, 10));
  while (performance.now() - start < warmMs + durationMs) {
    const t0 = performance.now();
    await socket.timeout(30_000).emitWithAck('heartbeat', {});
    rtts.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  await load;
  socket.disconnect();
  return rtts;
}

await main();
