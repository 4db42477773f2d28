/**
 * The OIP inference route's CPU per answer without sockets: 64 concurrent callers through
 * fastify's `inject` against the batched MNIST MLP (untrained; only cost matters), with a JSON
 * body, a binary body answered in binary (`bin`) and in JSON (`binjson`), and an empty route
 * registered in the same app receiving the binary bytes (`empty`). Phases are interleaved; the
 * first window is a warm-up. A fifth argument names the cases besides `empty` and `json` (default
 * `bin,binjson`; `unbatched`: the JSON body against a maxBatchSize-1 deployment, e.g. at
 * concurrency 1, where batched and unbatched take the same path). It prints per phase the minimum and median CPU µs per answer and
 * the medians of the per-window differences against JSON and against the empty route (paired:
 * windows next to each other share the machine's load). On a busy machine, where socket-level
 * figures vary by 2-3x between repeats, this isolates what the route itself costs; it is not
 * the goal's measure (bench/serving.ts is).
 *
 *   node --import ./scripts/dev-loader.mjs bench/serving-inject.ts [concurrency 64] [window ms 700] [windows 9] [cases bin,binjson]
 */
import { buildApp, MemoryBlobStore, MemoryStore } from '@flotilla/server';
import { buildPreset, resolveBackend, specOf } from '@flotilla/model';
import { median as med } from './stats.js';
const app = await buildApp({ store: new MemoryStore(), blobs: new MemoryBlobStore(), publicInference: true, processMetrics: false, authRateLimit: false, adminToken: 'bench-admin-token-0123456789abcdef' });
await resolveBackend('node');
const preset = buildPreset('mnist-mlp');
const { spec, weights } = specOf(preset.model, preset.numClasses);
preset.model.dispose();
await app.flotilla.registry.publish({ model: 'mnist', spec, weights });
await app.flotilla.serving.createDeployment({ name: 'batched', model: 'mnist', routing: { mode: 'split', targets: [{ ref: '1' }] }, batching: { maxBatchSize: 64, maxQueueDelayMs: 5, maxQueueSize: 100_000 } });
// Unbatched (maxBatchSize 1) on its own copy of the weights: batching settings belong to a loaded version.
await app.flotilla.registry.publish({ model: 'mnist', spec, weights });
await app.flotilla.serving.createDeployment({ name: 'unbatched', model: 'mnist', routing: { mode: 'split', targets: [{ ref: '2' }] }, batching: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 100_000 } });
await app.register(async (a) => { a.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_r, b, done) => done(null, b)); a.post('/bench-empty', async () => ({})); });
await app.ready();
let seed = 1;
const pixel = () => ((seed = (seed * 16807) % 2147483647) % 1000) / 1000;
const image = Array.from({ length: 784 }, pixel);
const json = { payload: Buffer.from(JSON.stringify({ inputs: [{ name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', data: image }] })), headers: { 'content-type': 'application/json' } };
const bin = (h: object) => { const head = Buffer.from(JSON.stringify(h)); return { payload: Buffer.concat([head, Buffer.from(Float32Array.from(image).buffer)]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length) } }; };
const input = { name: 'hidden1_input', shape: [1, 784], datatype: 'FP32', parameters: { binary_data_size: 3136 } };
const cases: Record<string, [string, { payload: Buffer; headers: Record<string, string> }]> = {
  empty: ['/bench-empty', bin({ inputs: [input] })],
  json: ['/v2/models/batched/infer', json],
  bin: ['/v2/models/batched/infer', bin({ inputs: [input], outputs: [{ name: 'logits', parameters: { binary_data: true } }] })],
  binjson: ['/v2/models/batched/infer', bin({ inputs: [input] })],
  unbatched: ['/v2/models/unbatched/infer', json],
};
const only = process.argv[5] ? new Set(['empty', 'json', ...process.argv[5].split(',')]) : new Set(['empty', 'json', 'bin', 'binjson']);
for (const k of Object.keys(cases)) if (!only.has(k)) delete cases[k];
const conc = Number(process.argv[2] ?? 64);
const ms = Number(process.argv[3] ?? 700);
async function run(k: string) {
  const [url, b] = cases[k];
  const end = performance.now() + ms;
  let n = 0;
  const c0 = process.cpuUsage();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (performance.now() < end) {
      const r = await app.inject({ method: 'POST', url, payload: b.payload, headers: b.headers });
      if (r.statusCode !== 200) throw new Error(r.body);
      n++;
    }
  }));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}
const res: Record<string, number[]> = {};
for (let rep = 0; rep < Number(process.argv[4] ?? 9); rep++) for (const k of Object.keys(cases)) (res[k] ??= []).push(await run(k));
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(8), 'min', Math.min(...v.slice(1)).toFixed(1), 'median', med(v.slice(1)).toFixed(1), 'paired-vs-json median', med(v.slice(1).map((x, i) => x - res.json[i + 1])).toFixed(1), 'paired-vs-empty median', med(v.slice(1).map((x, i) => x - res.empty[i + 1])).toFixed(1), 'median of empty/this', med(v.slice(1).map((x, i) => res.empty[i + 1] / x)).toFixed(2));
await app.close();
