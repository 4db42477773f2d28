/**
 * Operator console benchmark (issue 15). One coordinator (`flotilla serve`) in a child process;
 * raw protocol devices in loader processes (bench/scale/device-loader.ts: hello, heartbeats, a
 * precomputed tiny-mlp delta per round, no training); consoles are Debian's chromium tabs on the
 * task page, driven by playwright-core.
 *
 *   npx tsx bench/console.ts [--devices 1000] [--rounds 5] [--consoles 10] [--trials 5] [--loaders 2]
 *
 * 1. Live channel cost: coordinator CPU per round and CPU share (CPU seconds / wall seconds) over
 *    phases of `rounds` rounds each, in one run: no console, `consoles` raw SSE streams (the
 *    channel alone), `consoles` chromium tabs on the task page (channel + the API calls the page
 *    makes per round), each phase twice, interleaved.
 * 2. Page weight: gzip -9 of the JS and CSS the console loads, against Swagger UI (/docs) served
 *    by the same server; and the bytes the browser received.
 * 3. Time to first chart: navigation start to the first plotted point on the task page (token
 *    preset in session storage), median of `trials` fresh tabs, against Swagger UI's time to its
 *    first rendered operation.
 */
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import type { Browser, BrowserContext } from 'playwright-core';
import { chromiumPath, CHROMIUM_SKIP_REASON, launchChromium } from '../test/helpers/chromium.js';
import { admin, startChildServer, type ChildServer } from '../test/helpers/child-server.js';
import { closeLoaders, startLoaders } from './scale/loaders.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    consoles: { type: 'string', default: '10' },
    trials: { type: 'string', default: '5' },
    loaders: { type: 'string', default: '2' },
  },
});
const N = Number(values.devices);
const K = Number(values.rounds);
const C = Number(values.consoles);
const TRIALS = Number(values.trials);
const TASK = 'live';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!chromiumPath()) {
  console.log(`bench/console: ${CHROMIUM_SKIP_REASON}`);
  process.exit(0);
}

/** A tab with the session token already in session storage (what signing in leaves there). */
async function consoleTab(browser: Browser, s: ChildServer, hash: string): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx.addInitScript((t) => sessionStorage.setItem('flotilla.console.token', t), s.adminToken);
  const page = await ctx.newPage();
  await page.goto(`${s.url}/ui/${hash}`);
  await page.locator('.live.live').waitFor({ timeout: 60_000 });
  return ctx;
}

/** A raw SSE subscriber (what the page's fetch reader does), counting the bytes it receives. */
function sseClient(s: ChildServer): { bytes: () => number; close: () => void } {
  let bytes = 0;
  const req = request(`${s.url}/api/v1/events`, { headers: { authorization: `Bearer ${s.adminToken}`, accept: 'text/event-stream' } }, (res) => res.on('data', (d: Buffer) => (bytes += d.length)));
  req.on('error', () => {});
  req.end();
  return { bytes: () => bytes, close: () => req.destroy() };
}

async function nextRound(s: ChildServer): Promise<number> {
  return (await admin(s, 'GET', `/api/v1/tasks/${TASK}`)).nextRound;
}

/** Waits for a round boundary, then measures coordinator CPU and wall time over the next K rounds. */
async function phase(s: ChildServer): Promise<{ cpuPerRound: number; share: number; wallPerRound: number }> {
  const start = await nextRound(s);
  while ((await nextRound(s)) === start) await sleep(100);
  const from = await nextRound(s);
  const c0 = s.cpuSeconds();
  const t0 = performance.now();
  while ((await nextRound(s)) < from + K) await sleep(100);
  const cpu = s.cpuSeconds() - c0;
  const wall = (performance.now() - t0) / 1000;
  return { cpuPerRound: cpu / K, share: cpu / wall, wallPerRound: wall / K };
}

async function gzipOfAssets(s: ChildServer, urls: string[]): Promise<number> {
  let total = 0;
  for (const u of urls) {
    const res = await fetch(u, { headers: { authorization: `Bearer ${s.adminToken}` } });
    total += gzipSync(Buffer.from(await res.arrayBuffer()), { level: 9 }).byteLength;
  }
  return total;
}

async function main() {
  const s = await startChildServer();
  const browser = await launchChromium();
  try {
    await admin(s, 'POST', '/api/v1/tasks', { id: TASK, preset: 'tiny-mlp', plan: { clientsPerRound: N, overSelect: 1, minReports: N, minAvailable: N, roundDeadlineMs: 600_000, maxRounds: 1_000_000 } });
    const params = (await admin(s, 'GET', `/api/v1/tasks/${TASK}`)).parameters;
    const loaders = startLoaders(s, TASK, N, Number(values.loaders), { respond: true, download: false, deltaFloats: params });
    await Promise.all(loaders.map((l) => l.connected));
    await admin(s, 'POST', `/api/v1/tasks/${TASK}/start`);
    console.log(`live channel cost: ${N} raw devices (tiny-mlp, ${params} params, f32 deltas, no downloads), every device selected each round; ${K} rounds per phase; ${C} consoles`);
    const results: Record<string, Array<{ cpuPerRound: number; share: number; wallPerRound: number }>> = { none: [], sse: [], browser: [] };
    let sseBytesPerSecond = 0;
    for (let rep = 0; rep < 2; rep++) {
      results.none.push(await phase(s));
      const streams = Array.from({ length: C }, () => sseClient(s));
      const b0 = streams.reduce((n, x) => n + x.bytes(), 0);
      const t0 = performance.now();
      results.sse.push(await phase(s));
      sseBytesPerSecond = (streams.reduce((n, x) => n + x.bytes(), 0) - b0) / C / ((performance.now() - t0) / 1000);
      streams.forEach((x) => x.close());
      const tabs: BrowserContext[] = [];
      for (let i = 0; i < C; i++) tabs.push(await consoleTab(browser, s, `#/task/${TASK}`));
      await sleep(2000);
      results.browser.push(await phase(s));
      await Promise.all(tabs.map((t) => t.close()));
    }
    await admin(s, 'POST', `/api/v1/tasks/${TASK}/pause`);
    const none = { cpu: median(results.none.map((x) => x.cpuPerRound)), share: median(results.none.map((x) => x.share)), wall: median(results.none.map((x) => x.wallPerRound)) };
    console.log('consoles open              CPU s/round  CPU share  wall s/round  CPU/round vs none');
    for (const [name, label] of [['none', 'none'], ['sse', `${C} raw SSE streams`], ['browser', `${C} chromium task pages`]] as const) {
      const r = results[name];
      const cpu = median(r.map((x) => x.cpuPerRound));
      console.log(`${label.padEnd(26)} ${cpu.toFixed(3).padStart(11)}  ${(median(r.map((x) => x.share)) * 100).toFixed(1).padStart(8)}%  ${median(r.map((x) => x.wallPerRound)).toFixed(2).padStart(12)}  ${(cpu / none.cpu).toFixed(2).padStart(17)}x`);
    }
    console.log(`each console's stream carried ${(sseBytesPerSecond / 1024).toFixed(2)} KiB/s (pulse every second + round and task frames)`);
    await closeLoaders(loaders);

    // Page weight and time to first chart, console against Swagger UI on the same server.
    const trial = async (url: string, ready: string) => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await ctx.addInitScript((t) => sessionStorage.setItem('flotilla.console.token', t), s.adminToken);
      const page = await ctx.newPage();
      await page.goto(url);
      const at = (await page.waitForFunction((sel) => (document.querySelector(sel) ? performance.now() : 0), ready, { polling: 'raf', timeout: 60_000 })).jsonValue();
      const assets = await page.evaluate(() =>
        (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).filter((e) => /\.(m?js|css)(\?|$)/.test(e.name)).map((e) => ({ name: e.name, wire: e.encodedBodySize })),
      );
      await ctx.close();
      return { ms: await at, assets };
    };
    const ui = [];
    const docs = [];
    for (let i = 0; i < TRIALS; i++) {
      ui.push(await trial(`${s.url}/ui/#/task/${TASK}`, 'figure.chart:not([data-points="0"]) svg circle'));
      docs.push(await trial(`${s.url}/docs`, '.opblock'));
    }
    const uiGzip = await gzipOfAssets(s, ui[0].assets.map((a) => a.name));
    const docsGzip = await gzipOfAssets(s, docs[0].assets.map((a) => a.name));
    const uiWire = ui[0].assets.reduce((n, a) => n + a.wire, 0);
    console.log(`page weight (JS+CSS, gzip -9): console ${(uiGzip / 1024).toFixed(1)} KiB in ${ui[0].assets.length} files (${(uiWire / 1024).toFixed(1)} KiB on the wire); Swagger UI ${(docsGzip / 1024).toFixed(1)} KiB in ${docs[0].assets.length} files; ratio ${(uiGzip / docsGzip).toFixed(3)}`);
    const tUi = median(ui.map((x) => x.ms));
    const tDocs = median(docs.map((x) => x.ms));
    console.log(`time to first chart (median of ${TRIALS}, loopback, ${(await admin(s, 'GET', `/api/v1/tasks/${TASK}`)).nextRound - 1} rounds in the task): ${tUi.toFixed(0)} ms; Swagger UI to its first operation: ${tDocs.toFixed(0)} ms; ratio ${(tUi / tDocs).toFixed(2)}`);
  } finally {
    await browser.close();
    await s.stop();
  }
}

await main();
