import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { chromiumPath, CHROMIUM_SKIP_REASON, launchChromium } from '../helpers/chromium.js';

/**
 * The SDK's IndexedDB device-state store (client-sdk/src/state/indexeddb-state-store.ts) in a real
 * page of Debian's chromium: the store suite's contract (bytes per key, whole replacement, copies
 * in and out, delete) and persistence across a page reload, which is what a restarted browser
 * device relies on to resume SCAFFOLD's c_i or FedDyn's h_k. The module is the SDK's source,
 * transpiled as is and served from a loopback origin (IndexedDB needs a real origin).
 */
const CHROMIUM = chromiumPath();
if (!CHROMIUM) console.warn(`IndexedDB store test skipped: ${CHROMIUM_SKIP_REASON}`);

let server: Server;
let origin = '';
let browser: Browser;

beforeAll(async () => {
  if (!CHROMIUM) return;
  const src = readFileSync(new URL('../../client-sdk/src/state/indexeddb-state-store.ts', import.meta.url), 'utf8');
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
  server = createServer((req, res) => {
    if (req.url === '/store.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>store</title><script type="module">import { IndexedDbStateStore } from '/store.js'; window.Store = IndexedDbStateStore;</script>`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
});

describe.skipIf(!CHROMIUM)('IndexedDbStateStore in a page', () => {
  it('keeps bytes per key, copies in and out, deletes, and survives a reload', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(origin + '/');
    await page.waitForFunction(() => (window as any).Store);
    const first = await page.evaluate(async () => {
      const IndexedDbStateStore = (window as any).Store;
      const s = new IndexedDbStateStore('flotilla-test');
      const out: unknown[] = [IndexedDbStateStore.available(), await s.get('a')];
      const v = Uint8Array.from([1, 2, 3]);
      await s.set('a', v);
      v[0] = 9;
      const got = await s.get('a');
      out.push(Array.from(got));
      got[1] = 7;
      out.push(Array.from(await s.get('a')));
      await s.set('a', Uint8Array.from([4]));
      out.push(Array.from(await s.get('a')));
      await s.set('dev/task/scaffold.c', Uint8Array.from([5, 6]));
      await s.set('gone', Uint8Array.from([1]));
      await s.delete('gone');
      await s.delete('never-set');
      out.push(await s.get('gone'));
      return out;
    });
    expect(first).toEqual([true, null, [1, 2, 3], [1, 2, 3], [4], null]);
    await page.reload();
    await page.waitForFunction(() => (window as any).Store);
    const after = await page.evaluate(async () => {
      const s = new (window as any).Store('flotilla-test');
      return [Array.from(await s.get('a')), Array.from(await s.get('dev/task/scaffold.c'))];
    });
    expect(after).toEqual([[4], [5, 6]]);
    await context.close();
  }, 120_000);
});
