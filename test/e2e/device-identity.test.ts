import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { f32Codec } from '@flotilla/protocol';
import type { FlotillaApp } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { startServer } from '../helpers/server.js';

/**
 * Device takeover (issue 11 item 4): a device id is bound to the credential that enrolled it.
 * Another token of the same task, or a token of another task, presenting that id is refused with
 * FL_ERR_CLIENT_BOUND; the live session stays, the impostor's update never reaches the round, and
 * the client record does not move. The binding survives a restart (SQLite).
 */
describe('device identity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-identity-'));
  const devs: RawDevice[] = [];
  afterAll(() => {
    devs.forEach((d) => d.close());
    rmSync(dir, { recursive: true, force: true });
  });
  const dev = (url: string) => {
    const d = new RawDevice(url);
    devs.push(d);
    return d;
  };

  it('refuses another credential for a bound device id, keeps the live session, and keeps the binding across a restart', async () => {
    let { app, url }: { app: FlotillaApp; url: string } = await startServer({ dataDir: dir });
    try {
      const auth = app.flotilla.authenticator;
      await app.flotilla.coordinator.createTask({ id: 'a', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, roundDeadlineMs: 600_000 } });
      await app.flotilla.coordinator.createTask({ id: 'b', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
      const mine = (await auth.createToken({ role: 'device', taskId: 'a', createdBy: 'test' })).token;
      const sameTask = (await auth.createToken({ role: 'device', taskId: 'a', createdBy: 'test' })).token;
      const otherTask = (await auth.createToken({ role: 'device', taskId: 'b', createdBy: 'test' })).token;

      const real = dev(url);
      expect((await real.hello(mine, 'a', { deviceId: 'phone-1' })).ok).toBe(true);
      await app.flotilla.coordinator.startTask('a');
      await real.instruction(1);

      const impostor = await dev(url).hello(sameTask, 'a', { deviceId: 'phone-1' });
      expect(impostor.error.code).toBe('FL_ERR_CLIENT_BOUND');
      expect((await dev(url).hello(otherTask, 'b', { deviceId: 'phone-1' })).error.code).toBe('FL_ERR_CLIENT_BOUND');
      expect((await dev(url).hello(app.flotilla.deviceToken, 'a', { deviceId: 'phone-1' })).error.code).toBe('FL_ERR_CLIENT_BOUND');
      // The real device was not cut off, its record did not move, and it still reports.
      expect(real.socket.connected).toBe(true);
      expect((await real.send('heartbeat', {})).ok).toBe(true);
      expect((await app.flotilla.coordinator.clients.get('phone-1'))?.taskId).toBe('a');
      expect((await app.flotilla.coordinator.clients.get('phone-1'))?.tokenId).not.toBeNull();
      const delta = f32Codec.encode(new Float32Array(195).fill(0.01));
      expect((await real.report({ taskId: 'a', round: 1, numExamples: 1, metrics: {}, codec: 'f32', delta })).ok).toBe(true);

      // A reconnect with the same credential replaces the session, as before.
      const again = dev(url);
      expect((await again.hello(mine, 'a', { deviceId: 'phone-1' })).ok).toBe(true);
      await new Promise<void>((resolve) => (real.socket.connected ? real.socket.once('disconnect', () => resolve()) : resolve()));
      again.close();
      await app.close();

      ({ app, url } = await startServer({ dataDir: dir, adminToken: app.flotilla.adminToken, deviceToken: app.flotilla.deviceToken }));
      expect((await dev(url).hello(sameTask, 'a', { deviceId: 'phone-1' })).error.code).toBe('FL_ERR_CLIENT_BOUND');
      expect((await dev(url).hello(mine, 'a', { deviceId: 'phone-1' })).ok).toBe(true);
    } finally {
      await app.close();
    }
  }, 60_000);
});
