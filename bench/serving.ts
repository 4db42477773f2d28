/**
 * Serving benchmark: closed-loop load on loopback against the MNIST MLP (784-200-200-10) through
 * the Open Inference Protocol route, at each concurrency, with dynamic batching on and off in the
 * same run, and against an empty fastify route that receives the same body (the HTTP ceiling).
 *
 *   npx tsx bench/serving.ts [--concurrency 1,16,64] [--seconds 3] [--warmup 0.5] [--max-batch 64] [--delay-ms 5]
 *
 * The server runs in this thread; the load generator runs in a worker thread (its own event loop)
 * with keep-alive HTTP/1.1 connections, one per concurrent client. Each client sends a one-row
 * request, waits for the answer, and sends the next (closed loop). Latencies are client-side.
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import { buildPreset, specOf } from '@flotilla/model';
import { buildApp, MemoryBlobStore, MemoryStore } from '@flotilla/server';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,16,64' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '0.5' },
    'max-batch': { type: 'string', default: '64' },
    'delay-ms': { type: 'string', default: '5' },
  },
});
const levels = values.concurrency!.split(',').map(Number);
const durationMs = Number(values.seconds) * 1000;
const warmMs = Number(values.warmup) * 1000;

/** Plain-JS closed-loop client (a worker thread evaluates it; no TS loader needed there). */
const LOADGEN = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { port, path, body, concurrency, warmMs, durationMs } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const len = Buffer.byteLength(body);
function once() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': len } }, (res) => {
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

function runLoad(port: number, path: string, body: string, concurrency: number): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(LOADGEN, { eval: true, workerData: { port, path, body, concurrency, warmMs, durationMs } });
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

async function main(): Promise<void> {
  const app = await buildApp({ store: new MemoryStore(), blobs: new MemoryBlobStore(), publicInference: true, processMetrics: false, authRateLimit: false });
  const preset = buildPreset('mnist-mlp');
  const { spec, weights } = specOf(preset.model, preset.numClasses);
  preset.model.dispose();
  // The same weights twice: batching settings belong to a loaded version, so each mode gets its own.
  await app.flotilla.registry.publish({ model: 'mnist', spec, weights });
  await app.flotilla.registry.publish({ model: 'mnist', spec, weights });
  const serving = app.flotilla.serving;
  const maxBatch = Number(values['max-batch']);
  await serving.createDeployment({
    name: 'batched',
    model: 'mnist',
    routing: { mode: 'split', targets: [{ ref: '1' }] },
    batching: { maxBatchSize: maxBatch, maxQueueDelayMs: Number(values['delay-ms']), maxQueueSize: 4096 },
  });
  await serving.createDeployment({
    name: 'unbatched',
    model: 'mnist',
    routing: { mode: 'split', targets: [{ ref: '2' }] },
    batching: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 4096 },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;

  const empty = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
  empty.post('/empty', async () => ({}));
  await empty.listen({ port: 0, host: '127.0.0.1' });
  const emptyPort = (empty.server.address() as { port: number }).port;

  let seed = 1;
  const pixel = () => ((seed = (seed * 16807) % 2147483647) % 1000) / 1000;
  const body = JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', data: Array.from({ length: 784 }, pixel) }] });
  console.log(`serving bench: MNIST MLP, backend ${serving.backendName}, body ${body.length} bytes, ${durationMs / 1000} s per phase after ${warmMs / 1000} s warm-up`);
  console.log(`batched: maxBatchSize ${maxBatch}, maxQueueDelayMs ${values['delay-ms']}; unbatched: maxBatchSize 1`);

  const rows: string[] = [];
  const table: Record<number, Record<string, PhaseResult>> = {};
  for (const c of levels) {
    table[c] = {};
    for (const [name, p, path] of [
      ['empty route', emptyPort, '/empty'],
      ['unbatched', port, '/v2/models/unbatched/infer'],
      ['batched', port, '/v2/models/batched/infer'],
    ] as const) {
      const r = await runLoad(p, path, body, c);
      table[c][name] = r;
      const bad = Object.entries(r.statuses).filter(([s]) => s !== '200');
      rows.push(
        `${String(c).padStart(4)}  ${name.padEnd(12)} ${r.rps.toFixed(0).padStart(8)} ${r.p50.toFixed(2).padStart(8)} ${r.p95.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)}${bad.length ? `  non-200: ${JSON.stringify(Object.fromEntries(bad))}` : ''}`,
      );
    }
  }
  console.log('\nconc  target          req/s   p50 ms   p95 ms   p99 ms');
  for (const r of rows) console.log(r);
  console.log('\nratios (req/s)');
  for (const c of levels) {
    const t = table[c];
    console.log(
      `  c=${String(c).padEnd(3)} batched/unbatched ${(t.batched.rps / t.unbatched.rps).toFixed(2)}x   batched/empty ${(t.batched.rps / t['empty route'].rps).toFixed(2)}   unbatched/empty ${(t.unbatched.rps / t['empty route'].rps).toFixed(2)}`,
    );
  }
  const info = serving.servingStats().models.find((m) => m.version === 1)!;
  const sizes = Object.entries(info.batcher.batchSizes).map(([k, v]) => [Number(k), v] as const);
  const meanBatch = sizes.reduce((s, [k, v]) => s + k * v, 0) / Math.max(1, sizes.reduce((s, [, v]) => s + v, 0));
  console.log(`\nbatched version: ${info.batcher.batches} batches, mean batch ${meanBatch.toFixed(1)} rows, largest ${Math.max(...sizes.map(([k]) => k))}; cold start ${info.coldStartMs.total.toFixed(1)} ms`);
  const top = levels[levels.length - 1];
  console.log(`\nRESULT batched/unbatched at c=${top}: ${(table[top].batched.rps / table[top].unbatched.rps).toFixed(2)}x (Triton's tutorial reports ~3.3x); batched/empty route: ${(table[top].batched.rps / table[top]['empty route'].rps).toFixed(2)}`);
  await empty.close();
  await app.close();
}

await main();
