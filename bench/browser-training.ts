/**
 * Benchmark: local training throughput of a device in headless chromium (webgl, and wasm with
 * WebGL taken away) beside a Node device on the wasm backend, same model, same data size, same run.
 *
 *   node --import ./scripts/dev-loader.mjs bench/browser-training.ts [--rounds 4] [--examples 600] [--preset mnist-mlp]
 *
 * One in-process coordinator (memory store) runs a task of `--preset` (default mnist-mlp,
 * 784-200-200-10, ~200k parameters) with one device a round, E=1, B=10 (the README demo's plan).
 * Each device kind joins alone for `--rounds` rounds with `--examples` random rows of the model's
 * input size (throughput does not depend on the values): the Node SDK (FlotillaClient, tfjs wasm
 * backend, as on a machine without tfjs-node), then the SDK bundled for the browser in a page of
 * Debian's chromium (examples/browser-device/assets.mjs serves the bundle and the wasm binaries).
 * examples/s = numExamples / trainMs of the SDK's `fit` event (weights in, training, weights out);
 * the first round of each kind is warm-up, the median of the others is printed, with the ratio
 * browser / Node (Node measured before and after the browsers; the ratio uses their mean). Skips the browser rows, saying why, where chromium is absent.
 */
import { parseArgs } from 'node:util';
import { buildApp } from '@flotilla/server';
import { FlotillaClient, resolveBackend, type FitEvent } from '@flotilla/client';
import { chromiumPath, CHROMIUM_SKIP_REASON, launchChromium, withoutWebgl } from '../test/helpers/chromium.js';
// @ts-expect-error: plain-JavaScript example module without type declarations
import { mountBrowserDevice } from '../examples/browser-device/assets.mjs';
import { median } from './stats.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, examples: { type: 'string', default: '600' }, preset: { type: 'string', default: 'mnist-mlp' } } });
const ROUNDS = Number(values.rounds);
const EXAMPLES = Number(values.examples);

const app = await buildApp({});
await mountBrowserDevice(app, { conditions: ['@flotilla/source'] });
// A page that is a device with random local data of the task's input size; it records fit events.
app.get('/device/bench.html', (_req, reply) =>
  reply.type('text/html').send(`<!doctype html><meta charset="utf-8"><script type="module">
import { FlotillaClient, resolveBackend, setWasmPaths } from './flotilla-client.js';
const q = new URLSearchParams(location.search);
const n = Number(q.get('examples')), d = Number(q.get('inputSize')), k = Number(q.get('classes'));
const x = new Float32Array(n * d).map(() => Math.random()), y = new Uint8Array(n).map(() => Math.floor(Math.random() * k));
setWasmPaths(new URL('wasm/', location.href).href);
const bench = (window.bench = { backend: await resolveBackend(), fits: [] });
const c = new FlotillaClient({ url: location.origin, token: q.get('token'), taskId: q.get('task'), data: { train: () => ({ x, y, inputSize: d, numClasses: k }) } });
c.on('fit', (e) => bench.fits.push(e));
await c.start();
</script>`),
);
await app.listen({ port: 0, host: '127.0.0.1' });
const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
const co = app.flotilla.coordinator;
const task = await co.createTask({ id: 'bench', preset: values.preset as 'mnist-mlp', plan: { clientsPerRound: 1, overSelect: 1, maxRounds: 1_000_000, epochs: 1, batchSize: 10, learningRate: 0.05, roundDeadlineMs: 600_000 } });
const inputSize = task.spec.inputShape[task.spec.inputShape.length - 1] as number;
const classes = task.spec.numClasses;
await co.startTask('bench');

const rate = (fits: FitEvent[]) => median(fits.slice(1).map((f) => (f.numExamples / f.trainMs) * 1000));
const rows: [string, string, number][] = [];

// Node device: the SDK on tfjs's wasm backend. Run before and after the browsers, so drift of the
// (shared) machine's load during the run shows in the two Node rows.
async function nodeDevice(label: string): Promise<void> {
  const x = new Float32Array(EXAMPLES * inputSize).map(() => Math.random());
  const y = new Uint8Array(EXAMPLES).map(() => Math.floor(Math.random() * classes));
  const fits: FitEvent[] = [];
  const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 'bench', data: { train: () => ({ x, y, inputSize, numClasses: classes }) } });
  c.on('fit', (e) => fits.push(e));
  await c.start();
  while (fits.length < ROUNDS) await new Promise((r) => setTimeout(r, 100));
  await c.stop();
  rows.push([label, await resolveBackend(), rate(fits)]);
}
await nodeDevice('node');

if (!chromiumPath()) console.log(`browser rows skipped: ${CHROMIUM_SKIP_REASON}`);
else {
  const browser = await launchChromium();
  for (const noWebgl of [false, true]) {
    const page = await browser.newPage();
    if (noWebgl) await withoutWebgl(page);
    await page.goto(`${url}/device/bench.html?task=bench&examples=${EXAMPLES}&inputSize=${inputSize}&classes=${classes}&token=${encodeURIComponent(app.flotilla.deviceToken)}`);
    type B = { backend: string; fits: FitEvent[] };
    let b: B;
    for (;;) {
      b = await page.evaluate(() => (window as unknown as { bench?: B }).bench ?? { backend: '', fits: [] });
      if (b.fits.length >= ROUNDS) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.close();
    rows.push(['chromium', b.backend, rate(b.fits)]);
  }
  await browser.close();
}
await nodeDevice('node (after)');
await app.close();

console.log(`local training throughput, ${values.preset}, ${EXAMPLES} examples, E=1, B=10, median of rounds 2..${ROUNDS}`);
for (const [where, backend, r] of rows) console.log(`  ${where.padEnd(13)} ${backend.padEnd(6)} ${r.toFixed(0).padStart(7)} examples/s`);
const nodeRows = rows.filter((r) => r[0].startsWith('node')).map((r) => r[2]);
const node = nodeRows.reduce((a, b) => a + b, 0) / nodeRows.length;
for (const [where, backend, r] of rows.filter((r) => !r[0].startsWith('node'))) console.log(`  ratio ${where} ${backend} / node ${rows[0][1]} (mean of both Node rows): ${(r / node).toFixed(2)}x`);
