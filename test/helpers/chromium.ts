import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Debian's chromium for browser tests, driven by playwright-core (which never downloads a browser
 * here: it is only pointed at the installed binary). `FLOTILLA_CHROMIUM` overrides the path.
 * Contract: `chromiumPath()` is null where no binary exists, and tests then skip with
 * `CHROMIUM_SKIP_REASON` printed; `launchChromium()` starts a headless browser that the caller
 * must close.
 */
const CANDIDATES = [process.env.FLOTILLA_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];

export function chromiumPath(): string | null {
  for (const p of CANDIDATES) if (p && existsSync(p)) return p;
  return null;
}

export const CHROMIUM_SKIP_REASON =
  'chromium is not installed (apt-get install chromium; .ci/run installs it), or set FLOTILLA_CHROMIUM to its path';

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error(CHROMIUM_SKIP_REASON);
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage', '--enable-unsafe-swiftshader'],
  });
}

/**
 * Takes WebGL away from a page before its scripts run (getContext('webgl'/'webgl2') answers null
 * on canvases and offscreen canvases), as on a browser without GPU support: tfjs must fall back.
 */
export async function withoutWebgl(page: Page): Promise<void> {
  await page.addInitScript(() => {
    for (const C of [HTMLCanvasElement, OffscreenCanvas]) {
      const get = C.prototype.getContext as (...a: unknown[]) => unknown;
      (C.prototype as { getContext: unknown }).getContext = function (this: unknown, type: string, ...rest: unknown[]) {
        return /webgl/.test(type) ? null : get.call(this, type, ...rest);
      };
    }
  });
}
