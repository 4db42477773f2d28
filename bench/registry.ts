/**
 * Benchmark: the model registry on its embedded default storage (SQLite + files in a temp dir).
 *
 *   npx tsx bench/registry.ts [--params 1000000] [--publishes 7] [--seconds 2] [--rounds 5] [--concurrency 8]
 *
 * Printed figures:
 *  - publish latency of a `--params` model (median and min/max of `--publishes` publishes, each of
 *    new weights): all variants (float16, int8, pruned: encode + fsynced blob writes + one SQLite
 *    transaction), and float32 only; no central evaluation (that cost is the evaluator's);
 *  - read throughput over real HTTP on loopback: GET/s of model.json + weights.bin of one version
 *    through the registry routes (bearer auth, zod validation, store lookup, verified artifact
 *    cache) against @fastify/static serving the same two files from disk, in the same run, with
 *    the same client (keep-alive node:http, `--concurrency` loops for `--seconds`), the two
 *    alternating for `--rounds` passes;
 *  - ratio = median registry GET/s / median static GET/s (passes are noisy on a shared machine). (The registry answers from its verified
 *    in-memory artifact cache; @fastify/static streams the file from the page cache.)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fastifyStatic from '@fastify/static';
import Fastify from 'fastify';
import type { ModelSpec } from '@flotilla/protocol';
import { buildManifest } from '@flotilla/protocol';
import { buildApp } from '../server/src/app.js';
import { Registry } from '../server/src/registry/registry.js';
import { FileBlobStore } from '../server/src/store/file-blob-store.js';
import { SqliteStore } from '../server/src/store/sqlite-store.js';
import { tempDir } from '../test/store/temp-dir.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    params: { type: 'string', default: '1000000' },
    publishes: { type: 'string', default: '7' },
    seconds: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '5' },
  },
});
const PARAMS = Number(values.params);
const PUBLISHES = Number(values.publishes);
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);

/** A one-layer dense model of about PARAMS parameters: kernel [n, 1000] and bias [1000]. */
function spec(): ModelSpec {
  const units = 1000;
  const inputs = Math.max(1, Math.round((PARAMS - units) / units));
  return {
    topology: {
      class_name: 'Sequential',
      config: { name: 'bench', layers: [{ class_name: 'Dense', config: { name: 'dense', units, activation: 'linear', use_bias: true, batch_input_shape: [null, inputs], dtype: 'float32' } }] },
      keras_version: 'tfjs-layers 4.22.0',
      backend: 'tensor_flow.js',
    },
    manifest: buildManifest([
      { name: 'dense/kernel', shape: [inputs, units] },
      { name: 'dense/bias', shape: [units] },
    ]),
    inputShape: [inputs],
    numClasses: units,
  };
}

function weights(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = (s / 4294967296 - 0.5) * 0.1;
  }
  return w;
}

const fmt = (ms: number[]) => `median ${median(ms).toFixed(1)} ms (min ${Math.min(...ms).toFixed(1)}, max ${Math.max(...ms).toFixed(1)}, n=${ms.length})`;

async function publishLatency(): Promise<void> {
  const dir = await tempDir('flotilla-bench-');
  const store = new SqliteStore({ dataDir: dir.dir });
  await store.init();
  const blobs = new FileBlobStore(dir.dir);
  const s = spec();
  const n = s.manifest.reduce((a, w) => a + w.size, 0);
  for (const [label, registry] of [
    ['all variants', new Registry(store, blobs)],
    ['float32 only', new Registry(store, blobs, { variants: [] })],
  ] as const) {
    const ms: number[] = [];
    for (let i = 0; i < PUBLISHES; i++) {
      const w = weights(n, 1000 * ms.length + label.length);
      const t0 = performance.now();
      await registry.publish({ model: `bench-${label.replace(/\W/g, '')}`, spec: s, weights: w });
      ms.push(performance.now() - t0);
    }
    console.log(`publish ${n.toLocaleString('en')} params, ${label}: ${fmt(ms)}`);
  }
  await store.close();
  await dir.remove();
}

/** GET/s of `paths` (fetched in turn by each loop) for SECONDS, bodies consumed. */
async function load(base: string, paths: string[], headers: Record<string, string>): Promise<{ rps: number; mbps: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const url = new URL(base);
  let count = 0;
  let bytes = 0;
  const until = performance.now() + SECONDS * 1000;
  const once = (path: string) =>
    new Promise<void>((resolve, reject) => {
      get({ host: url.hostname, port: url.port, path, agent, headers }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}`));
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve());
      }).on('error', reject);
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        for (const p of paths) {
          await once(p);
          count++;
        }
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  agent.destroy();
  return { rps: count / s, mbps: bytes / s / 1e6 };
}

async function readThroughput(): Promise<void> {
  const dir = await tempDir('flotilla-bench-');
  const admin = 'bench-admin-token-0123456789';
  const app = await buildApp({ dataDir: join(dir.dir, 'data'), adminToken: admin, deviceToken: 'bench-device-token-0123456789' });
  const s = spec();
  const n = s.manifest.reduce((a, w) => a + w.size, 0);
  const reg = new Registry(app.flotilla.store, app.flotilla.blobs, { variants: [] });
  const v = await reg.publish({ model: 'bench', spec: s, weights: weights(n, 7) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const regBase = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const prefix = `/api/v1/models/bench/versions/${v.version}`;
  const auth = { authorization: `Bearer ${admin}` };

  // The same two files on disk, served by @fastify/static.
  const staticDir = join(dir.dir, 'static');
  await mkdir(staticDir, { recursive: true });
  const modelJson = await (await fetch(`${regBase}${prefix}/model.json`, { headers: auth })).arrayBuffer();
  const weightBytes = await (await fetch(`${regBase}${prefix}/weights.bin`, { headers: auth })).arrayBuffer();
  await writeFile(join(staticDir, 'model.json'), Buffer.from(modelJson));
  await writeFile(join(staticDir, 'weights.bin'), Buffer.from(weightBytes));
  const st = Fastify({ logger: false });
  await st.register(fastifyStatic, { root: staticDir, prefix: '/static/', immutable: true, maxAge: '1y' });
  await st.listen({ port: 0, host: '127.0.0.1' });
  const stBase = `http://127.0.0.1:${(st.server.address() as { port: number }).port}`;

  console.log(`read: model.json (${modelJson.byteLength} B) + weights.bin (${(weightBytes.byteLength / 1e6).toFixed(2)} MB), concurrency ${CONCURRENCY}, ${SECONDS} s each`);
  // Warm both (the registry's verified-artifact cache, the OS page cache), then alternate the two
  // targets so that load from other processes on the machine hits both alike.
  const regPaths = [`${prefix}/model.json`, `${prefix}/weights.bin`];
  const stPaths = ['/static/model.json', '/static/weights.bin'];
  await load(regBase, regPaths, auth);
  await load(stBase, stPaths, {});
  const regRps: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await load(regBase, regPaths, auth);
    const b = await load(stBase, stPaths, {});
    regRps.push(r.rps);
    base.push(b.rps);
    console.log(`  pass ${i + 1}: registry ${r.rps.toFixed(0)} GET/s (${r.mbps.toFixed(0)} MB/s), @fastify/static ${b.rps.toFixed(0)} GET/s (${b.mbps.toFixed(0)} MB/s)`);
  }
  console.log(`registry routes : ${median(regRps).toFixed(0)} GET/s (median of ${ROUNDS} passes)`);
  console.log(`@fastify/static : ${median(base).toFixed(0)} GET/s (median of ${ROUNDS} passes)`);
  console.log(`ratio registry/static: ${(median(regRps) / median(base)).toFixed(2)}`);
  await st.close();
  await app.close();
  await dir.remove();
}

await publishLatency();
await readThroughput();
