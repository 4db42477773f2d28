import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { buildApp, type FlotillaApp } from '@flotilla/server';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { bytesToFloat32 } from '@flotilla/protocol';
import { chromiumPath, CHROMIUM_SKIP_REASON, launchChromium, withoutWebgl } from '../helpers/chromium.js';
import { synthetic } from '../helpers/synthetic.js';
// @ts-expect-error: plain-JavaScript example module without type declarations
import { mountBrowserDevice } from '../../examples/browser-device/assets.mjs';

/**
 * Real browsers in real rounds: three pages of examples/browser-device (headless Debian chromium)
 * and two Node SDK devices join one task. Rounds commit with the pages' reports; a round with only
 * the pages moves the global model by exactly their weighted-mean delta; a page closed while it
 * trains counts as dropped and its round still commits. One page has WebGL taken away and must
 * train on wasm, with the binaries from the coordinator's own origin.
 */
const CHROMIUM = chromiumPath();
if (!CHROMIUM) console.warn(`browser device test skipped: ${CHROMIUM_SKIP_REASON}`);

interface PageState {
  status: string;
  backend: string | null;
  deviceId: string | null;
  training: boolean;
  fits: { round: number; numExamples: number }[];
  rejected: { round: number; code: string }[];
  errors: string[];
  lastDelta: { round: number; values: number[] } | null;
  deltas: Record<number, { round: number; values: number[] }>;
}

const TASK = 'web';
let app: FlotillaApp;
let url: string;
let browser: Browser;
const requests: string[] = [];

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const res = await app.inject({ method: method as 'GET', url: path, headers: { authorization: `Bearer ${app.flotilla.adminToken}` }, ...(body ? { payload: body as object } : {}) });
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${res.body}`);
  return res.json();
}

const state = (p: Page) => p.evaluate(() => (window as unknown as { flotillaDevice: PageState }).flotillaDevice);

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs = 180_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function openPage(seed: number, examples: number, opts: { noWebgl?: boolean } = {}): Promise<Page> {
  const page = await browser.newPage();
  if (opts.noWebgl) {
    // This page's browser offers no WebGL: tfjs must fall back to wasm.
    await withoutWebgl(page);
  }
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => console.warn(`page ${seed}: ${e.message}`));
  const token = encodeURIComponent(app.flotilla.deviceToken);
  await page.goto(`${url}/device/?task=${TASK}&seed=${seed}&examples=${examples}&token=${token}`);
  await until(`page ${seed} to join`, async () => (await state(page))?.deviceId);
  return page;
}

async function weightsOf(version: number): Promise<Float32Array> {
  const res = await app.inject({ method: 'GET', url: `/api/v1/models/${TASK}/versions/${version}/artifacts/weights`, headers: { authorization: `Bearer ${app.flotilla.adminToken}` } });
  expect(res.statusCode).toBe(200);
  return bytesToFloat32(new Uint8Array(res.rawPayload));
}

async function roundDone(n: number) {
  return until(`round ${n} to end`, async () => {
    const r = await api('GET', `/api/v1/tasks/${TASK}/rounds/${n}`).catch(() => null);
    return r && (r.state === 'done' || r.state === 'failed') ? r : null;
  });
}

describe.skipIf(!CHROMIUM)('browser devices (examples/browser-device in headless chromium)', () => {
  const pages: Page[] = [];
  const nodes: FlotillaClient[] = [];

  beforeAll(async () => {
    app = await buildApp({ reconnectGraceMs: 500 });
    await mountBrowserDevice(app, { conditions: ['@flotilla/source'] });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await browser?.close();
    await app?.close();
  });

  it('three pages and two Node devices train in the same rounds; a pages-only round moves the model by their deltas; a closed page is dropped', async () => {
    await app.flotilla.coordinator.createTask({
      id: TASK,
      preset: 'tiny-mlp',
      plan: { clientsPerRound: 5, overSelect: 1, minReports: 5, maxRounds: 50, epochs: 1, batchSize: 16, learningRate: 0.2, roundDeadlineMs: 120_000 },
    });
    pages.push(await openPage(1, 300), await openPage(2, 200), await openPage(3, 250, { noWebgl: true }));
    const trainer = new LocalTrainer();
    for (const seed of [11, 12]) {
      const data = synthetic(150, seed);
      const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: TASK, data: { train: () => data }, trainer });
      await c.start();
      nodes.push(c);
    }
    const states = await Promise.all(pages.map(state));
    // webgl where the browser offers it, else wasm (page 3 has WebGL taken away).
    const offered = await pages[0].evaluate(() => !!document.createElement('canvas').getContext('webgl2') || !!document.createElement('canvas').getContext('webgl'));
    expect(states.map((s) => s.backend)).toEqual(offered ? ['webgl', 'webgl', 'wasm'] : ['wasm', 'wasm', 'wasm']);
    const pageIds = states.map((s) => s.deviceId!);

    // Round 1: all five report.
    await api('POST', `/api/v1/tasks/${TASK}/start`);
    const r1 = await roundDone(1);
    expect(r1.state).toBe('done');
    expect(new Set(r1.reported)).toEqual(new Set([...pageIds, ...nodes.map((n) => n.deviceId!)]));
    expect(r1.trainMetrics.examples).toBe(300 + 200 + 250 + 150 + 150);

    // A round with only browser reports: the Node devices leave, three devices a round.
    await api('POST', `/api/v1/tasks/${TASK}/pause`);
    await Promise.all(nodes.map((n) => n.stop()));
    await api('PATCH', `/api/v1/tasks/${TASK}/plan`, { clientsPerRound: 3, minReports: 3 });
    const before = (await api('GET', `/api/v1/tasks/${TASK}`)).nextRound - 1;
    await api('POST', `/api/v1/tasks/${TASK}/resume`);
    const rb = await until('a pages-only round', async () => {
      const { rounds } = await api('GET', `/api/v1/tasks/${TASK}/rounds?limit=5`);
      const r = rounds.find((x: any) => x.round > before && x.state === 'done');
      return r ? api('GET', `/api/v1/tasks/${TASK}/rounds/${r.round}`) : null;
    });
    expect(new Set(rb.reported)).toEqual(new Set(pageIds));
    // Read by round: the pages may already be training the next round.
    const deltas = await Promise.all(pages.map(async (p) => (await state(p)).deltas[rb.round]!));
    for (const d of deltas) expect(d.round).toBe(rb.round);
    const base = await weightsOf(rb.baseVersion);
    const next = await weightsOf(rb.committedVersion);
    const n = [300, 200, 250];
    const total = n.reduce((a, b) => a + b);
    let moved = 0;
    for (let i = 0; i < base.length; i++) {
      const expected = deltas.reduce((s, d, k) => s + (d.values[i] * n[k]) / total, 0);
      expect(next[i] - base[i]).toBeCloseTo(expected, 5);
      moved += Math.abs(next[i] - base[i]);
    }
    expect(moved).toBeGreaterThan(0);

    // A page closed mid-training is dropped; the round commits with the other pages.
    await api('POST', `/api/v1/tasks/${TASK}/pause`);
    const heavy = await openPage(4, 60_000);
    const heavyId = (await state(heavy)).deviceId!;
    await api('PATCH', `/api/v1/tasks/${TASK}/plan`, { clientsPerRound: 4, minReports: 3 });
    const before2 = (await api('GET', `/api/v1/tasks/${TASK}`)).nextRound - 1;
    await api('POST', `/api/v1/tasks/${TASK}/resume`);
    await until('the heavy page to train', async () => (await state(heavy)).training);
    const dropRound = app.flotilla.coordinator.getRunner(TASK).currentRound!.round;
    expect(dropRound).toBeGreaterThan(before2);
    await heavy.close();
    const rd = await roundDone(dropRound);
    expect(rd.state).toBe('done');
    expect(rd.dropped).toEqual([heavyId]);
    expect(new Set(rd.reported)).toEqual(new Set(pageIds));

    // A page with a bad token meets the same coded error as the SDK in Node, and says so.
    const refused = await browser.newPage();
    await refused.goto(`${url}/device/?task=${TASK}&token=not-a-device-token`);
    await until('the refusal', async () => /FL_ERR_AUTH_INVALID_TOKEN/.test((await state(refused)).status));
    await refused.close();

    // Nothing came from anywhere but the coordinator: the SDK bundle and the wasm binaries included.
    expect(requests.filter((r) => !r.startsWith(url))).toEqual([]);
    expect(requests.some((r) => r.startsWith(`${url}/device/wasm/`))).toBe(true);
    // The only refusals: reports for rounds that the pauses above ended before they came in.
    for (const p of pages) {
      for (const rej of (await state(p)).rejected) {
        expect(rej.code).toBe('FL_ERR_ROUND_LATE_REPORT');
        expect((await api('GET', `/api/v1/tasks/${TASK}/rounds/${rej.round}`)).state).not.toBe('done');
      }
    }
  }, 600_000);
});
