import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { type FlotillaApp, type RoundRecord } from '@flotilla/server';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { expandMask, generateKeyPair, pairSeed, reconstruct } from '@flotilla/protocol';
import { chromiumPath, CHROMIUM_SKIP_REASON } from '../helpers/chromium.js';
import { synthetic } from '../helpers/synthetic.js';
import { nextEvent } from '../helpers/server.js';
import { expectSecureFedAvg } from '../helpers/secagg-expect.js';
import { startBrowserDeviceApp, until } from '../helpers/browser-app.js';

/**
 * Secure aggregation in a real browser: the SDK bundle of examples/browser-device (the code
 * devices run) computes the same PRG words, Shamir shares and X25519 agreements as Node with
 * WebCrypto alone, and two chromium pages take part in a secure round with a Node device; the
 * committed model is the FedAvg mean of all three within the quantization error.
 */
const CHROMIUM = chromiumPath();
if (!CHROMIUM) console.warn(`secure aggregation browser test skipped: ${CHROMIUM_SKIP_REASON}`);

const Q = { bits: 20, clipRange: 4, maxWeight: 1000 };
let app: FlotillaApp;
let url: string;
let browser: Browser;

interface PageState {
  deviceId: string | null;
  fits: { round: number; numExamples: number }[];
  errors: string[];
  deltas: Record<number, { round: number; values: number[] }>;
}
const state = (p: Page) => p.evaluate(() => (window as unknown as { flotillaDevice: PageState }).flotillaDevice);


describe.skipIf(!CHROMIUM)('secure aggregation in chromium (examples/browser-device)', () => {
  const node: FlotillaClient[] = [];
  beforeAll(async () => {
    ({ app, url, browser } = await startBrowserDeviceApp({ reconnectGraceMs: 0 }));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(node.map((c) => c.stop()));
    await browser?.close();
    await app?.close();
  });

  it('the browser bundle masks, shares and agrees exactly as Node does, with no Node crypto in it', async () => {
    const bundle = (await app.inject({ method: 'GET', url: '/device/flotilla-client.js' })).body;
    expect(bundle).not.toMatch(/node:crypto|require\(["']crypto["']\)/);
    const page = await browser.newPage();
    await page.goto(`${url}/device/?task=none&token=x`);
    const seed = Array.from({ length: 32 }, (_, i) => i);
    const nodeKeys = await generateKeyPair();
    // A string, so that the test runner's transform leaves the page's dynamic import alone.
    const out = (await page.evaluate(`(async () => {
      const p = (await import('/device/flotilla-client.js')).protocol;
      const seed = Uint8Array.from(${JSON.stringify(seed)});
      const words = Array.from(await p.expandMask(seed, 1000));
      const shares = p.split(seed.map((b) => b ^ 0x5a), 3, [1, 2, 3, 4, 5]).map((s) => ({ x: s.x, y: Array.from(s.y) }));
      const keys = await p.generateKeyPair();
      const agreed = Array.from(await p.pairSeed(keys.privateKey, Uint8Array.from(${JSON.stringify(Array.from(nodeKeys.publicKey))}), 't', 7));
      return { words, shares, pagePublic: Array.from(keys.publicKey), agreed, secure: window.isSecureContext };
    })()`)) as { words: number[]; shares: { x: number; y: number[] }[]; pagePublic: number[]; agreed: number[]; secure: boolean };
    expect(out.secure).toBe(true);
    expect(out.words).toEqual(Array.from(await expandMask(Uint8Array.from(seed), 1000)));
    const back = reconstruct(out.shares.slice(2).map((s) => ({ x: s.x, y: Uint8Array.from(s.y) })), 3);
    expect(Array.from(back)).toEqual(seed.map((b) => b ^ 0x5a));
    expect(out.agreed).toEqual(Array.from(await pairSeed(nodeKeys.privateKey, Uint8Array.from(out.pagePublic), 't', 7)));
    await page.close();
  });

  it('two pages and a Node device train one secure round; the model moves by their FedAvg mean', async () => {
    const co = app.flotilla.coordinator;
    await co.createTask({
      id: 'web',
      preset: 'tiny-mlp',
      plan: {
        clientsPerRound: 3,
        overSelect: 1,
        maxRounds: 1,
        epochs: 1,
        batchSize: 16,
        learningRate: 0.2,
        roundDeadlineMs: 150_000,
        secureAggregation: { protocol: 'secagg', threshold: 2, quantization: { bits: Q.bits, clipRange: Q.clipRange }, maxWeight: Q.maxWeight, phaseTimeoutMs: 60_000 },
      },
    });
    const token = encodeURIComponent(app.flotilla.deviceToken);
    const pages: Page[] = [];
    const examples = [120, 80];
    for (const [k, n] of examples.entries()) {
      const page = await browser.newPage();
      page.on('pageerror', (e) => console.warn(`page ${k}: ${e.message}`));
      await page.goto(`${url}/device/?task=web&seed=${k + 1}&examples=${n}&token=${token}`);
      await until(`page ${k} to join`, async () => (await state(page))?.deviceId);
      pages.push(page);
    }
    const data = synthetic(150, 21);
    const nodeDeltas = new Map<number, Float32Array>();
    const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 'web', data: { train: () => data }, trainer: new LocalTrainer(), hooks: { transformDelta: (d, i) => void nodeDeltas.set(i.round, d.slice()) } });
    await c.start();
    node.push(c);
    const runner = co.getRunner('web');
    const before = Float32Array.from(runner.globalWeights);
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1, 300_000);
    await co.startTask('web');
    const r1 = await done;
    const states = await Promise.all(pages.map(state));
    expect(states.flatMap((s) => s.errors)).toEqual([]);
    expect(r1.state).toBe('done');
    expect(r1.secureAggregation!.outcome).toBe('unmasked');
    expect(new Set(r1.reported)).toEqual(new Set([...states.map((s) => s.deviceId), c.deviceId]));
    expectSecureFedAvg(before, runner.globalWeights, [
      ...states.map((s, k) => ({ examples: examples[k], delta: s.deltas[1].values })),
      { examples: 150, delta: nodeDeltas.get(1)! },
    ], Q);
  }, 400_000);
});
