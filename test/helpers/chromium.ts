import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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
