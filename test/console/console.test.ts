import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { chromiumPath, CHROMIUM_SKIP_REASON } from '../helpers/chromium.js';
import { synthetic } from '../helpers/synthetic.js';
import { ADMIN, startConsole, type ConsoleHarness } from './console-harness.js';

const haveChromium = chromiumPath() !== null;
if (!haveChromium) console.warn(`skipping the console browser tests: ${CHROMIUM_SKIP_REASON}`);

const ROUNDS = 6;
const points = (page: Page, title: string) => page.locator(`figure[aria-label="${title}"]`).getAttribute('data-points').then(Number);
/** The console's formatting of the API's numbers (server/ui/lib/format.js). */
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const ms = (x: number) => `${x.toFixed(2)} ms`;

/**
 * The operator console in a real browser against a real coordinator with real SDK devices
 * training tiny-mlp: a live task chart, alias promotion and rollback, a viewer's read-only view
 * (and the API refusing it anyway), a two-version deployment's shares and percentiles, and
 * screenshots of every page under test-output/console/.
 */
describe.skipIf(!haveChromium)('operator console in chromium', () => {
  let h: ConsoleHarness;
  const clients: FlotillaClient[] = [];

  beforeAll(async () => {
    h = await startConsole();
    await h.call('POST', '/api/v1/tasks', {
      id: 'demo',
      preset: 'tiny-mlp',
      plan: { clientsPerRound: 3, overSelect: 1, maxRounds: ROUNDS, epochs: 1, batchSize: 16, learningRate: 0.3, roundDeadlineMs: 60_000, evalClientsPerRound: 2 },
    });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 3; i++) {
      const train = synthetic(150, 11 + i);
      const held = synthetic(40, 50 + i);
      clients.push(new FlotillaClient({ url: h.url, token: h.app.flotilla.deviceToken, taskId: 'demo', deviceId: `phone-${i}`, data: { train: () => train, evaluate: () => held }, trainer }));
    }
    await Promise.all(clients.map((c) => c.start()));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await h?.close();
  });

  it('signs in, starts the task from the page and the accuracy chart gains points live, without a reload', async () => {
    const { page, context, problems, urls } = await h.signIn(ADMIN);
    try {
      await page.getByRole('link', { name: 'demo', exact: true }).click();
      await page.getByRole('heading', { name: /Task demo/ }).waitFor();
      await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same document'));
      expect(await points(page, 'Accuracy')).toBe(0);
      await page.getByRole('button', { name: 'Start' }).click();
      await page.waitForFunction(() => Number(document.querySelector('figure[aria-label="Accuracy"]')?.getAttribute('data-points')) > 0, null, { timeout: 90_000 });
      const first = await points(page, 'Accuracy');
      await page.waitForFunction((n) => Number(document.querySelector('figure[aria-label="Accuracy"]')?.getAttribute('data-points')) > n, first, { timeout: 90_000 });
      await page.locator('h1 .state.done').waitFor({ timeout: 120_000 });
      await page.waitForFunction((n) => document.querySelectorAll('table.rounds tbody tr').length === n, ROUNDS);
      expect(await page.evaluate(() => (window as unknown as { marker: string }).marker)).toBe('same document');
      // Central accuracy per committed round, as the API reports it, is what the data table shows.
      const api = (await h.call('GET', '/api/v1/tasks/demo/rounds?limit=100')).json.rounds as Array<{ round: number; state: string; centralMetrics: { accuracy: number } }>;
      expect(api.filter((r) => r.state === 'done')).toHaveLength(ROUNDS);
      const table = page.locator('figure[aria-label="Accuracy"] table');
      for (const r of api) expect(await table.locator(`tbody tr:has(th:text-is("${r.round}")) td`).first().textContent()).toBe(pct(r.centralMetrics.accuracy));
      await h.shot(page, 'task');
      await h.shot(page, 'task-1280x800', false);
      await page.getByRole('link', { name: 'Overview' }).click();
      await page.getByRole('heading', { name: 'Training tasks' }).waitFor();
      await page.getByRole('link', { name: 'Fleet' }).click();
      await page.getByRole('rowheader', { name: 'phone-0' }).waitFor();
      await h.shot(page, 'fleet');
      expect(problems).toEqual([]);
      expect(urls.filter((u) => u.includes(ADMIN))).toEqual([]);
      expect(await page.evaluate(() => localStorage.length)).toBe(0);
      expect(await page.evaluate(() => sessionStorage.getItem('flotilla.console.token'))).toBe(ADMIN);
    } finally {
      await context.close();
    }
  });

  it('promotes an alias from the registry page (the API then reports it) and rolls it back, each confirmation naming the versions', async () => {
    const { page, context, problems } = await h.signIn(ADMIN);
    const alias = async () => (await h.call('GET', '/api/v1/models/demo/aliases')).json.aliases.find((a: { alias: string }) => a.alias === 'production')?.version;
    const promote = async (version: number, expected: string) => {
      await page.getByLabel('Alias', { exact: true }).fill('production');
      await page.getByLabel('Version', { exact: true }).selectOption(String(version));
      await page.getByRole('button', { name: 'Promote…' }).click();
      const dialog = page.getByRole('dialog');
      await expect(dialog.locator('.confirm-text').textContent()).resolves.toBe(expected);
      await dialog.getByRole('button', { name: `Move production to version ${version}` }).click();
      await page.locator('tr[data-alias="production"] .alias-version', { hasText: String(version) }).waitFor();
    };
    try {
      await page.getByRole('link', { name: 'Registry' }).click();
      await page.getByRole('heading', { name: 'Aliases of demo' }).waitFor();
      await promote(3, 'Create alias production of demo at version 3.');
      expect(await alias()).toBe(3);
      await promote(5, 'Move alias production of demo from version 3 to version 5.');
      expect(await alias()).toBe(5);
      await page.locator('tr[data-alias="production"]').getByRole('button', { name: 'Roll back…' }).click();
      const dialog = page.getByRole('dialog');
      await expect(dialog.locator('.confirm-text').textContent()).resolves.toBe('Move alias production of demo back from version 5 to version 3.');
      await dialog.getByRole('button', { name: 'Roll back to version 3' }).click();
      await page.locator('tr[data-alias="production"] .alias-version', { hasText: '3' }).waitFor();
      expect(await alias()).toBe(3);
      const history = (await h.call('GET', '/api/v1/models/demo/aliases/production/history')).json.history;
      expect(history.map((x: { action: string; from: number | null; to: number }) => [x.action, x.from, x.to])).toEqual([['rollback', 5, 3], ['set', 3, 5], ['set', null, 3]]);
      await page.getByRole('button', { name: '5', exact: true }).click();
      await page.getByRole('heading', { name: 'Version 5: variants' }).waitFor();
      await h.shot(page, 'registry');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows a viewer no admin controls, and the API refuses an admin call forced from that page', async () => {
    const { page, context, problems } = await h.signIn(h.viewer);
    try {
      await expect(page.locator('.role').textContent()).resolves.toBe('viewer');
      await page.getByRole('link', { name: 'demo', exact: true }).click();
      await page.getByRole('heading', { name: 'Plan and strategy' }).waitFor();
      for (const name of ['Start', 'Pause', 'Resume', 'Stop…', 'Save plan']) expect(await page.getByRole('button', { name }).count(), name).toBe(0);
      expect(await page.locator('textarea').count()).toBe(0);
      await page.getByRole('link', { name: 'Registry' }).click();
      await page.getByRole('heading', { name: 'Aliases of demo' }).waitFor();
      expect(await page.getByRole('button', { name: /Promote|Roll back/ }).count()).toBe(0);
      await page.getByRole('link', { name: 'Fleet' }).click();
      await page.getByRole('rowheader', { name: 'phone-0' }).waitFor();
      expect(await page.getByRole('button', { name: 'Revoke…' }).count()).toBe(0);
      const forced = await page.evaluate(async () => {
        const token = sessionStorage.getItem('flotilla.console.token');
        const calls = [
          fetch('/api/v1/tasks/demo/stop', { method: 'POST', headers: { authorization: `Bearer ${token}` } }),
          fetch('/api/v1/models/demo/aliases/production', { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ version: 1 }) }),
          fetch('/api/v1/clients/phone-0/revoke', { method: 'POST', headers: { authorization: `Bearer ${token}` } }),
        ];
        return Promise.all(calls.map(async (p) => {
          const r = await p;
          return [r.status, (await r.json()).error.code];
        }));
      });
      expect(forced).toEqual([[403, 'FL_ERR_AUTH_FORBIDDEN'], [403, 'FL_ERR_AUTH_FORBIDDEN'], [403, 'FL_ERR_AUTH_FORBIDDEN']]);
      expect((await h.call('GET', '/api/v1/tasks/demo')).json.state).toBe('done');
      expect((await h.call('GET', '/api/v1/models/demo/aliases')).json.aliases.find((a: { alias: string }) => a.alias === 'production').version).toBe(3);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows a two-version deployment with the traffic shares and latency percentiles of its stats', async () => {
    const created = await h.call('POST', '/api/v1/deployments', { name: 'demo-ab', model: 'demo', routing: { mode: 'split', targets: [{ ref: '3', weight: 1 }, { ref: 'production', weight: 3 }] } });
    expect(created.status).toBe(201);
    await h.call('PUT', '/api/v1/models/demo/aliases/production', { version: 6 });
    for (let i = 0; i < 120; i++) {
      const rows = [Array.from({ length: 8 }, (_, j) => Math.sin(i + j))];
      const r = await fetch(`${h.url}/v2/models/demo-ab/infer`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id: `req-${i}`, inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: rows.flat() }] }),
      });
      expect(r.status).toBe(200);
    }
    const stats = (await h.call('GET', '/api/v1/deployments/demo-ab/stats')).json;
    expect(stats.requests).toBe(120);
    const { page, context, problems } = await h.signIn(ADMIN);
    try {
      await page.getByRole('link', { name: 'Serving' }).click();
      const card = page.locator('section[data-deployment="demo-ab"]');
      await card.locator('.total-requests', { hasText: '120' }).waitFor();
      for (const v of stats.versions) {
        const row = card.locator(`tr[data-target="${v.target}"]`);
        expect(await row.locator('.share .value').textContent(), v.target).toBe(pct(v.share));
        expect(await row.locator('.requests').textContent()).toBe(String(v.requests));
        for (const q of ['p50', 'p95', 'p99'] as const) expect(await row.locator(`.${q}`).textContent(), `${v.target} ${q}`).toBe(ms(v.latencyMs.total[q]));
      }
      expect(stats.versions.map((v: { currentVersion: number }) => v.currentVersion).sort()).toEqual([3, 6]);
      expect(stats.versions.reduce((n: number, v: { share: number }) => n + v.share, 0)).toBeCloseTo(1, 9);
      await card.locator('figure[data-points]:not([data-points="0"])').waitFor();
      await h.shot(page, 'serving');
      await page.getByRole('link', { name: 'Overview' }).click();
      await page.getByRole('rowheader', { name: 'demo-ab' }).waitFor();
      await h.shot(page, 'overview');
      const phone = await h.signIn(ADMIN, { width: 390, height: 844 });
      try {
        await phone.page.getByRole('link', { name: 'demo', exact: true }).click();
        await phone.page.locator('figure[aria-label="Accuracy"]:not([data-points="0"])').waitFor();
        const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, 'page wider than a phone').toBeLessThanOrEqual(0);
        await h.shot(phone.page, 'task-phone');
        expect(phone.problems).toEqual([]);
      } finally {
        await phone.context.close();
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('filters the fleet by search and revokes a device after a confirmation that names it', async () => {
    const { page, context, problems } = await h.signIn(ADMIN);
    try {
      await page.getByRole('link', { name: 'Fleet' }).click();
      await page.getByRole('rowheader', { name: 'phone-0' }).waitFor();
      await page.getByLabel('Search').fill('phone-1');
      await page.getByText('1 shown of 3 devices.').waitFor();
      await page.getByRole('button', { name: 'Revoke…' }).click();
      const dialog = page.getByRole('dialog');
      await expect(dialog.getByRole('heading').textContent()).resolves.toBe('Revoke device phone-1?');
      await dialog.getByRole('button', { name: 'Revoke device' }).click();
      await page.locator('.state.revoked').waitFor();
      expect((await h.call('GET', '/api/v1/clients/phone-1')).json.state).toBe('revoked');
      expect((await h.call('GET', '/api/v1/clients/phone-0')).json.state).toBe('connected');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('serves /ui with a strict CSP and reaches every page and control from the keyboard', async () => {
    const res = await fetch(`${h.url}/ui/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(await res.text()).not.toMatch(/<script>|<style>|style=/);
    const { page, context } = await h.signIn(ADMIN);
    try {
      const reached = new Set<string>();
      for (let i = 0; i < 12; i++) {
        await page.keyboard.press('Tab');
        reached.add(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.textContent?.trim() ?? ''));
      }
      for (const name of ['Overview', 'Fleet', 'Registry', 'Serving', 'Sign out']) expect(reached.has(name), `${name} by Tab`).toBe(true);
      await page.getByRole('link', { name: 'Registry' }).focus();
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Aliases of demo' }).waitFor();
    } finally {
      await context.close();
    }
  });
});
