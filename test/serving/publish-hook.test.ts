import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { sendReport } from '../helpers/raw-round.js';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * Issue 11 item 16: the coordinator's publish hook is wired into serving, so a version a round
 * commits is what `latest` serves as soon as the commit is announced. Alias caching and the warm
 * poll are set to ten minutes here: without the hook the old version would be served that long.
 */
describe('serving hears of commits at once', () => {
  let app: FlotillaApp;
  let url: string;
  const devices: RawDevice[] = [];
  const P = 195; // tiny-mlp parameters

  beforeAll(async () => {
    ({ app, url } = await startServer({ serving: { warmIntervalMs: 600_000, aliasTtlMs: 600_000 }, authRateLimit: false }));
    await app.flotilla.coordinator.createTask({ id: 'pub', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, roundDeadlineMs: 60_000, maxRounds: 5 } });
  });
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await app.close();
  });

  const infer = async () => {
    const res = await fetch(`${url}/v2/models/pub/infer`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.flotilla.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { model_version: string };
  };

  it('answers the freshly committed version through `latest` right after the round event', async () => {
    expect((await infer()).model_version).toBe('1');
    const co = app.flotilla.coordinator;
    const d = new RawDevice(url);
    devices.push(d);
    expect((await d.hello(app.flotilla.deviceToken, 'pub')).ok).toBe(true);
    const committed = nextEvent<RoundRecord>(co.events, 'round');
    await co.startTask('pub');
    const round = (await d.instruction(1)).round;
    expect((await sendReport(d, 'pub', round, new Float32Array(P).fill(0.01))).ok).toBe(true);
    const rec = await committed;
    expect(rec).toMatchObject({ state: 'done', committedVersion: 2 });
    expect((await infer()).model_version).toBe('2');
  });

  it('serves the version an alias was moved to through the admin API at once, and after a rollback the old one', async () => {
    const inferAt = async (ref: string) => {
      const res = await fetch(`${url}/v2/models/pub/versions/${ref}/infer`, {
        method: 'POST',
        headers: { authorization: `Bearer ${app.flotilla.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'hidden_input', shape: [1, 8], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }] }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { model_version: string }).model_version;
    };
    const put = (version: number) =>
      fetch(`${url}/api/v1/models/pub/aliases/production`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${app.flotilla.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ version }),
      });
    expect((await put(1)).status).toBe(200);
    expect(await inferAt('production')).toBe('1');
    expect((await put(2)).status).toBe(200);
    expect(await inferAt('production')).toBe('2');
    const back = await fetch(`${url}/api/v1/models/pub/aliases/production/rollback`, { method: 'POST', headers: { authorization: `Bearer ${app.flotilla.adminToken}` } });
    expect(back.status).toBe(200);
    expect(await inferAt('production')).toBe('1');
  });
});
