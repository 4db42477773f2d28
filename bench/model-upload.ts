/**
 * Issue 13 benchmarks: uploading your own model, and what head-only training saves.
 *
 *   npx tsx bench/model-upload.ts [--sizes 25,50,100] [--rounds 3] [--width 1024 --deep 5] [--part upload|head|both]
 *
 * 1. Upload through REST (POST /api/v1/models/{name}/versions, a streamed tar, as the CLI's
 *    `tasks create --model DIR` sends it) of dense models of --sizes MB of float32 weights (4 MB
 *    shards), to a server in a child process (bench/upload-server.ts) that samples its own RSS:
 *    MB/s, and the server's peak RSS above its idle RSS against the file size. Baseline in the
 *    same run: a plain stream copy of the same files on the same disk (ratio = upload / copy MB/s).
 * 2. The MobileNet-like model of the e2e test (width 1024, deep 5: 23.6 MB; full-model training
 *    of it needs the cpu backend's conv gradients and takes minutes per round on 2 cores, so
 *    --width/--deep shrink it), two devices, --rounds rounds each:
 *    full-model training against head-only training (plan.trainableLayers ['head']) in one run:
 *    bytes uploaded per report and median round time; ratio head / full.
 * Prints a table per part and writes an SVG chart of part 1 to bench/results/model-upload.svg.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { FlotillaClient, type FitEvent } from '@flotilla/client';
import { resolveBackend } from '@flotilla/model';
import { buildApp } from '../server/src/app.js';
import { ApiClient } from '../server/src/cli/api-client.js';
import { uploadModelDir } from '../server/src/cli/model-upload.js';
import type { RoundRecord } from '../server/src/store/records.js';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { mobilenetLike } from '../test/helpers/mobilenet-like.js';
import { saveModelDir } from '../test/helpers/model-dir.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: { sizes: { type: 'string', default: '25,50,100' }, rounds: { type: 'string', default: '3' }, width: { type: 'string', default: '1024' }, deep: { type: 'string', default: '5' }, part: { type: 'string', default: 'both' } },
});
const WIDTH = Number(values.width);
const DEEP = Number(values.deep);
const SIZES = values.sizes!.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const MB = 1e6;

/** A dense model.json of about `mb` MB: 1000-wide layers, weights written as 4 MB shards without building it in tfjs. */
async function denseModelDir(dir: string, mb: number): Promise<number> {
  const width = 1000;
  const layers = Math.max(1, Math.round((mb * MB) / 4 / (width * width + width)));
  const topology = {
    class_name: 'Sequential',
    config: {
      name: 'big',
      layers: Array.from({ length: layers }, (_, i) => ({
        class_name: 'Dense',
        config: { name: `d${i}`, units: width, activation: 'relu', use_bias: true, trainable: true, kernel_initializer: { class_name: 'Zeros', config: {} }, bias_initializer: { class_name: 'Zeros', config: {} }, ...(i === 0 ? { batch_input_shape: [null, width] } : {}) },
      })),
    },
    keras_version: 'tfjs-layers 4.22.0',
    backend: 'tensor_flow.js',
  };
  const weights = Array.from({ length: layers }, (_, i) => [
    { name: `d${i}/kernel`, shape: [width, width], dtype: 'float32' },
    { name: `d${i}/bias`, shape: [width], dtype: 'float32' },
  ]).flat();
  const total = 4 * layers * (width * width + width);
  const shard = 4 * 1024 * 1024;
  const paths: string[] = [];
  await mkdir(dir, { recursive: true });
  const block = new Float32Array(shard / 4).map((_, i) => Math.sin(i) * 0.01);
  for (let o = 0, k = 1; o < total; o += shard, k++) {
    const name = `group1-shard${k}of${Math.ceil(total / shard)}.bin`;
    paths.push(name);
    await writeFile(join(dir, name), new Uint8Array(block.buffer, 0, Math.min(shard, total - o)));
  }
  await writeFile(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: topology, weightsManifest: [{ paths, weights }] }));
  return total;
}

async function copyDir(src: string, dst: string): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const f of await readdir(src)) await pipeline(createReadStream(join(src, f)), createWriteStream(join(dst, f)));
}

async function uploadPart(): Promise<Array<{ mb: number; mbps: number; copyMbps: number; rssGrowthMb: number }>> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(import.meta.dirname, 'upload-server.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value as string);
  const ask = async (cmd: string) => (child.stdin!.write(`${cmd}\n`), next());
  const { url } = await next();
  const api = new ApiClient(url, 'bench-admin-token-0123456789');
  const work = await mkdtemp(join(tmpdir(), 'flotilla-upload-models-'));
  const rows = [];
  try {
    for (const mb of SIZES) {
      const dir = join(work, `m${mb}`);
      const bytes = await denseModelDir(dir, mb);
      const t0 = performance.now();
      await copyDir(dir, join(work, `copy${mb}`));
      const copyS = (performance.now() - t0) / 1000;
      await rm(join(work, `copy${mb}`), { recursive: true });
      const idle = (await ask('reset')).rss as number;
      const t1 = performance.now();
      const v = await uploadModelDir(api, `m${mb}`, dir);
      const s = (performance.now() - t1) / 1000;
      const { peak } = await ask('peak');
      if (v.artifacts[0].size !== bytes) throw new Error('size mismatch');
      rows.push({ mb: bytes / MB, mbps: bytes / MB / s, copyMbps: bytes / MB / copyS, rssGrowthMb: (peak - idle) / MB });
      await rm(dir, { recursive: true });
    }
  } finally {
    child.stdin!.write('quit\n');
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

let modelMb = 0;
async function headPart(): Promise<Array<{ mode: string; bytesPerReport: number; roundMs: number }>> {
  await resolveBackend('node');
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-head-bench-'));
  const model = mobilenetLike({ width: WIDTH, deep: DEEP });
  const { weightBytes } = await saveModelDir(model, join(dir, 'm'));
  modelMb = weightBytes / MB;
  model.dispose();
  const app = await buildApp({ adminToken: 'bench-admin-token-0123456789', processMetrics: false, authRateLimit: false, registry: { variants: [] } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const api = new ApiClient(url, 'bench-admin-token-0123456789');
  const v = await uploadModelDir(api, 'mobilenet', join(dir, 'm'));
  const out = [];
  try {
    for (const [mode, trainableLayers] of [['head-only', ['head']], ['full model', undefined]] as const) {
      const id = mode === 'head-only' ? 'head' : 'full';
      const co = app.flotilla.coordinator;
      await co.createTask({ id, fromVersion: { model: v.model, ref: v.version }, plan: { clientsPerRound: 2, overSelect: 1, maxRounds: ROUNDS, batchSize: 4, roundDeadlineMs: 600_000, ...(trainableLayers ? { trainableLayers: [...trainableLayers] } : {}) } });
      const rounds: RoundRecord[] = [];
      const fits: FitEvent[] = [];
      const done = new Promise<void>((resolve) => co.events.on('task', (t: { id: string; state: string }) => t.id === id && t.state === 'done' && resolve()));
      co.events.on('round', (r: RoundRecord) => r.taskId === id && rounds.push(r));
      const clients = [0, 1].map((d) => {
        const n = 6;
        const x = new Float32Array(n * 192).map((_, i) => Math.sin(i * (d + 1)));
        const y = new Int32Array(n).map((_, i) => (i + d) % 10);
        const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: id, deviceId: `${id}-${d}`, data: { train: () => ({ x, y, inputSize: 192 }) } });
        c.on('fit', (e) => fits.push(e));
        return c;
      });
      for (const c of clients) await c.start();
      await co.startTask(id);
      await done;
      await Promise.all(clients.map((c) => c.stop()));
      out.push({ mode, bytesPerReport: median(fits.map((f) => f.bytesUp)), roundMs: median(rounds.filter((r) => r.state === 'done').map((r) => r.endedAt! - r.startedAt)) });
    }
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

if (values.part !== 'head') {
const up = await uploadPart();
console.log(`\nModel upload through REST (streamed tar; server in a child process), node ${process.version}`);
console.log('model MB  upload MB/s  copy MB/s  ratio(upload/copy)  server peak RSS growth MB  growth/model');
for (const r of up) console.log(`${r.mb.toFixed(1).padStart(8)}  ${r.mbps.toFixed(1).padStart(11)}  ${r.copyMbps.toFixed(1).padStart(9)}  ${(r.mbps / r.copyMbps).toFixed(2).padStart(18)}  ${r.rssGrowthMb.toFixed(1).padStart(25)}  ${(r.rssGrowthMb / r.mb).toFixed(2).padStart(12)}`);
await mkdir(join(import.meta.dirname, 'results'), { recursive: true });
await writeFile(
  join(import.meta.dirname, 'results', 'model-upload.svg'),
  renderAccuracyChart({
    title: 'Model upload through REST: server peak RSS growth per MB of model',
    subtitle: 'streamed tar; 1.0 would mean the server holds the whole upload in memory',
    xLabel: 'model size (MB)',
    xUnit: ' MB',
    yLabel: 'RSS growth / model size',
    yMin: 0,
    series: [{ name: 'peak RSS growth / model size', points: up.map((r) => ({ x: r.mb, y: Math.min(1, r.rssGrowthMb / r.mb) })) }],
  }),
);
}
if (values.part !== 'upload') {

const head = await headPart();
console.log(`\nFull-model against head-only training, MobileNet-like model (width ${WIDTH}, deep ${DEEP}: ${modelMb.toFixed(1)} MB), 2 devices, ${ROUNDS} rounds each`);
console.log('mode         bytes per report  median round ms');
for (const r of head) console.log(`${r.mode.padEnd(12)} ${String(r.bytesPerReport).padStart(16)}  ${String(r.roundMs).padStart(15)}`);
const [h, f] = head;
console.log(`ratio head/full: bytes ${(h.bytesPerReport / f.bytesPerReport).toExponential(2)}, round time ${(h.roundMs / f.roundMs).toFixed(2)}`);
}
process.exit(0);
