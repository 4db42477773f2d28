/**
 * Benchmark: the deployment shapes of docs/deploy.md, on this machine, in one run.
 *
 *   node --import ./scripts/dev-loader.mjs bench/deploy.ts [--runs 3] [--requests 400] [--seconds 3] [--concurrency 16]
 *
 * A coordinator (in this process, real HTTP on loopback) holds mnist-mlp models. Then:
 *  1. cold start: a serving replica process (`flotilla serve --role serving --registry-url ...`)
 *     from spawn to `/readyz` 200, with 1 and with 5 preloaded models (alternating; medians), and
 *     each model's own load + warm-up as the replica reports it; ratio 5 / 1;
 *  2. latency: sequential one-row OIP requests to a sidecar on localhost, to a central serving
 *     replica over loopback HTTP, and to that replica behind a loopback HTTP load balancer (the
 *     hop a central tier adds); p50/p99 and ratios against the sidecar;
 *  3. scale-out: `--concurrency` clients for `--seconds` against one replica and against two
 *     behind the round-robin balancer (alternating; medians of req/s), ratio two / one.
 * Every process is started from sources through the development launcher (tsx), as the tests do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildPreset, specOf } from '@flotilla/model';
import { buildApp, MemoryBlobStore, MemoryStore } from '@flotilla/server';
import { median } from './stats.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, requests: { type: 'string', default: '400' }, seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '16' } },
});
const RUNS = Number(values.runs);
const REQUESTS = Number(values.requests);
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const BIN = fileURLToPath(new URL('../scripts/dev/flotilla.mjs', import.meta.url));
const ADMIN = 'deploy-bench-admin-token-000001';

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

// ---- the coordinator ----
const app = await buildApp({ store: new MemoryStore(), blobs: new MemoryBlobStore(), adminToken: ADMIN, deviceToken: 'deploy-bench-device-token-00001', processMetrics: false, authRateLimit: false });
const preset = buildPreset('mnist-mlp');
const { spec, weights } = specOf(preset.model, preset.numClasses);
preset.model.dispose();
for (let i = 1; i <= 5; i++) await app.flotilla.registry.publish({ model: `m${i}`, spec, weights });
const coord = await app.listen({ port: 0, host: '127.0.0.1' });
const post = async (path: string, body: unknown) =>
  (await fetch(`${coord}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
const servingToken = (await post('/api/v1/tokens', { role: 'serving' })).token as string;
const inferenceToken = (await post('/api/v1/tokens', { role: 'inference' })).token as string;
const params = spec.manifest.reduce((n, w) => n + w.size, 0);

interface Child {
  proc: ChildProcess;
  url: string;
  readyLine: Promise<{ ms: number; preload: Array<{ model: string; coldStartMs: number }> }>;
  stop(): Promise<void>;
}

async function start(args: string[], t0 = performance.now()): Promise<Child & { listenedAt: number }> {
  const proc = spawn(process.execPath, [BIN, ...args, '--port', '0', '--log-level', 'warn'], { env: { ...process.env, FLOTILLA_REGISTRY_TOKEN: servingToken }, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let buf = '';
  let onReady: (x: any) => void = () => undefined;
  const readyLine = new Promise<any>((r) => (onReady = r));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /flotilla listening (\S+)/.exec(buf);
      if (m) resolve(m[1]);
      const r = /flotilla ready (.*)\n/.exec(buf);
      if (r) onReady(JSON.parse(r[1]));
    });
    proc.once('exit', (code) => reject(new Error(`exited with ${code}`)));
  });
  return {
    proc,
    url,
    readyLine,
    listenedAt: performance.now() - t0,
    stop: async () => {
      const exited = new Promise((r) => proc.once('exit', r));
      process.kill(-proc.pid!, 'SIGKILL');
      await exited;
    },
  };
}

async function untilReady(url: string): Promise<void> {
  while (!(await fetch(`${url}/readyz`).then((r) => r.ok, () => false))) await new Promise((r) => setTimeout(r, 5));
}

const row = Array.from({ length: 784 }, (_, i) => (i % 17) / 17);
const body = JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', data: row }] });
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function infer(base: string, model: string, token?: string): Promise<number> {
  const u = new URL(`${base}/v2/models/${model}/infer`);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A round-robin HTTP load balancer on loopback (what a Service or an ingress adds). */
async function balancer(targets: string[]): Promise<{ url: string; close(): Promise<void> }> {
  let next = 0;
  const upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const t = new URL(targets[next++ % targets.length]);
    const up = http.request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers, agent: upstreamAgent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

// ---- 1. cold start ----
console.log(`mnist-mlp: ${params} parameters (${((params * 4) / 1024).toFixed(0)} KiB float32) per model; ${RUNS} runs each\n`);
const cold: Record<'1' | '5', { ready: number[]; listen: number[]; first: number[]; others: number[] }> = { '1': { ready: [], listen: [], first: [], others: [] }, '5': { ready: [], listen: [], first: [], others: [] } };
for (let run = 0; run < RUNS; run++) {
  for (const n of ['1', '5'] as const) {
    const preload = Array.from({ length: Number(n) }, (_, i) => `m${i + 1}`).join(',');
    const t0 = performance.now();
    const c = await start(['serve', '--role', 'serving', '--registry-url', coord, '--models', preload, '--preload', preload, '--no-live', '--report-interval-ms', '0'], t0);
    await untilReady(c.url);
    cold[n].ready.push(performance.now() - t0);
    cold[n].listen.push(c.listenedAt);
    const line = await c.readyLine;
    // The first load in a process also initialises the tfjs backend.
    cold[n].first.push(line.preload[0].coldStartMs);
    cold[n].others.push(...line.preload.slice(1).map((p) => p.coldStartMs));
    await c.stop();
  }
}
console.log('| preloaded models | spawn -> listening (ms) | spawn -> /readyz 200 (ms) | listening -> ready (ms) | first model load + warm-up (ms) | each further model (ms) |');
console.log('| --- | --- | --- | --- | --- | --- |');
const sync = (n: '1' | '5') => median(cold[n].ready.map((r, i) => r - cold[n].listen[i]));
for (const n of ['1', '5'] as const) {
  console.log(`| ${n} | ${median(cold[n].listen).toFixed(0)} | ${median(cold[n].ready).toFixed(0)} | ${sync(n).toFixed(0)} | ${median(cold[n].first).toFixed(1)} | ${cold[n].others.length ? median(cold[n].others).toFixed(1) : '-'} |`);
}
console.log(`ratio 5 / 1: spawn -> ready ${(median(cold['5'].ready) / median(cold['1'].ready)).toFixed(2)}, listening -> ready ${(sync('5') / sync('1')).toFixed(2)}\n`);

// ---- 2. latency: sidecar vs central replica ----
const cacheDir = mkdtempSync(join(tmpdir(), 'flotilla-bench-sidecar-'));
const sidecar = await start(['sidecar', '--registry-url', coord, '--model', 'm1@latest', '--cache-dir', cacheDir, '--report-interval-ms', '0']);
const r1 = await start(['serve', '--role', 'serving', '--registry-url', coord, '--models', 'm1', '--preload', 'm1', '--no-live', '--report-interval-ms', '0']);
const r2 = await start(['serve', '--role', 'serving', '--registry-url', coord, '--models', 'm1', '--preload', 'm1', '--no-live', '--report-interval-ms', '0']);
await Promise.all([untilReady(sidecar.url), untilReady(r1.url), untilReady(r2.url)]);
const lb1 = await balancer([r1.url]);
const targets = { sidecar: { url: sidecar.url, token: undefined }, replica: { url: r1.url, token: inferenceToken }, 'replica behind LB': { url: lb1.url, token: inferenceToken } } as const;
const lat: Record<string, number[]> = { sidecar: [], replica: [], 'replica behind LB': [] };
for (const t of Object.values(targets)) for (let i = 0; i < 50; i++) await infer(t.url, 'm1', t.token); // warm connections and token caches
for (let block = 0; block < 4; block++) {
  for (const [name, t] of Object.entries(targets)) for (let i = 0; i < REQUESTS / 4; i++) lat[name].push(await infer(t.url, 'm1', t.token));
}
console.log(`| one-row OIP request, ${REQUESTS} sequential | p50 ms | p99 ms | p50 / sidecar p50 |`);
console.log('| --- | --- | --- | --- |');
const side50 = quantile(lat.sidecar, 0.5);
for (const [name, xs] of Object.entries(lat)) console.log(`| ${name} | ${quantile(xs, 0.5).toFixed(2)} | ${quantile(xs, 0.99).toFixed(2)} | ${(quantile(xs, 0.5) / side50).toFixed(2)} |`);
console.log('');

// ---- 3. one replica vs two behind the balancer ----
const lb2 = await balancer([r1.url, r2.url]);
async function load(url: string): Promise<number> {
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await infer(url, 'm1', inferenceToken);
        done++;
      }
    }),
  );
  return done / SECONDS;
}
const rps: Record<'one' | 'two', number[]> = { one: [], two: [] };
await load(lb2.url);
for (let run = 0; run < RUNS; run++) {
  rps.one.push(await load(lb1.url));
  rps.two.push(await load(lb2.url));
}
console.log(`| ${CONCURRENCY} concurrent clients, ${SECONDS} s | req/s (median of ${RUNS}) |`);
console.log('| --- | --- |');
console.log(`| one replica behind the balancer | ${median(rps.one).toFixed(0)} |`);
console.log(`| two replicas behind the balancer | ${median(rps.two).toFixed(0)} |`);
console.log(`ratio two / one: ${(median(rps.two) / median(rps.one)).toFixed(2)} (os.availableParallelism: ${(await import('node:os')).availableParallelism()})`);

await lb1.close();
await lb2.close();
for (const c of [sidecar, r1, r2]) await c.stop();
rmSync(cacheDir, { recursive: true, force: true });
agent.destroy();
await app.close();
