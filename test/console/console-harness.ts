import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AppOptions, FlotillaApp } from '@flotilla/server';
import { createCentralEvaluator } from '@flotilla/simulator';
import { launchChromium } from '../helpers/chromium.js';
import { startServer } from '../helpers/server.js';
import { synthetic } from '../helpers/synthetic.js';

export const ADMIN = 'console-admin-token-0123456789abcdef';
export const DEVICE = 'console-device-token-0123456789abcdef';
/** Screenshots land here (git-ignored), one PNG per page and width. */
export const OUT_DIR = join(process.cwd(), 'test-output', 'console');

export interface ConsoleHarness {
  app: FlotillaApp;
  url: string;
  browser: Browser;
  viewer: string;
  /** Admin API call over real HTTP (token defaults to the admin one). */
  call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }>;
  /** A fresh browser tab (its own session storage) at 1280x800 unless `viewport`, signed in with `token`. */
  signIn(token: string, viewport?: { width: number; height: number }): Promise<{ page: Page; context: BrowserContext; problems: string[]; urls: string[] }>;
  /** A PNG of the whole page (or of the viewport only) under OUT_DIR. */
  shot(page: Page, name: string, fullPage?: boolean): Promise<string>;
  close(): Promise<void>;
}

/**
 * A real coordinator on a loopback port (central evaluation on a synthetic test set, so
 * accuracy is plotted), a viewer token, and Debian's chromium. Every tab records console errors,
 * page errors and CSP violations in `problems`, and every URL it requested in `urls`.
 */
export async function startConsole(opts: AppOptions = {}): Promise<ConsoleHarness> {
  const data = synthetic(300, 999);
  const test = { x: data.x, y: Uint8Array.from(data.y), inputSize: data.inputSize, numClasses: data.numClasses ?? 3 };
  const { app, url } = await startServer({ adminToken: ADMIN, deviceToken: DEVICE, authRateLimit: false, processMetrics: false, centralEvaluator: createCentralEvaluator(test), ...opts });
  const browser = await launchChromium();
  const call: ConsoleHarness['call'] = async (method, path, body, token = ADMIN) => {
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
  const viewer = (await call('POST', '/api/v1/tokens', { role: 'viewer', name: 'console-test' })).json.token as string;
  mkdirSync(OUT_DIR, { recursive: true });
  return {
    app,
    url,
    browser,
    viewer,
    call,
    async signIn(token, viewport = { width: 1280, height: 800 }) {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      const problems: string[] = [];
      const urls: string[] = [];
      page.on('console', (m) => m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[13]/.test(m.text()) && problems.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => urls.push(r.url()));
      await page.goto(`${url}/ui/`);
      await page.getByLabel('Admin or viewer token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('navigation', { name: 'Pages' }).waitFor();
      await page.locator('.live.live').waitFor();
      return { page, context, problems, urls };
    },
    async shot(page, name, fullPage = true) {
      const file = join(OUT_DIR, `${name}.png`);
      await page.screenshot({ path: file, fullPage });
      return file;
    },
    async close() {
      await browser.close();
      await app.close();
    },
  };
}
