import type { Browser } from 'playwright-core';
import { buildApp, type AppOptions, type FlotillaApp } from '@flotilla/server';
import { launchChromium } from './chromium.js';
// @ts-expect-error: plain-JavaScript example module without type declarations
import { mountBrowserDevice } from '../../examples/browser-device/assets.mjs';

/**
 * A coordinator on a loopback port serving examples/browser-device (the SDK bundled from its
 * sources) under /device/, and a headless chromium to open pages of it. The caller closes both.
 */
export async function startBrowserDeviceApp(opts: AppOptions = {}): Promise<{ app: FlotillaApp; url: string; browser: Browser }> {
  const app = await buildApp(opts);
  await mountBrowserDevice(app, { conditions: ['@flotilla/source'] });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return { app, url, browser: await launchChromium() };
}

/** Polls `f` every 100 ms until it gives a truthy value; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs = 180_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
