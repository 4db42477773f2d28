import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import type { FlotillaApp } from '@flotilla/server';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { nextEvent, startServer } from '../helpers/server.js';
import { ClusterDevice, until } from '../helpers/cluster.js';

if (redisSkipReason) console.warn(`skipping round-open failure test: ${redisSkipReason}`);

const TOKEN = 'dev-token-open-fail-0000000000';

/**
 * The leader announces each round to the cluster (`open` on Redis pub/sub) before instructing any
 * device. When that publish fails (Redis down, or refusing the command, at that moment) the round
 * must fail and a later one start: before the fix the round stayed in flight with no deadline
 * timer, and since the node still held the task's lease nothing ever cleared it, so the task
 * never committed again. Redis is made to refuse PUBLISH (an ACL rule for the default user)
 * rather than killed, so the lease, the fleet hash and every other command keep working and the
 * only failure is the `open` itself: no takeover can hide a stuck round.
 */
describe.skipIf(redisSkipReason !== null)('cluster leader whose round `open` cannot be published', () => {
  let redis: TestRedis;
  let app: FlotillaApp;
  let url: string;
  let ctl: ReturnType<typeof createClient>;
  beforeAll(async () => {
    redis = await startRedis();
    ctl = createClient({ url: redis.url });
    await ctl.connect();
    ({ app, url } = await startServer({ deviceToken: TOKEN, cluster: { redisUrl: redis.url, nodeId: 'solo', leaseMs: 3000 } }));
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await ctl?.quit().catch(() => undefined);
    await redis?.stop();
  });

  it('fails the round at once and commits rounds again once Redis takes the publish', async () => {
    const c = app.flotilla.coordinator;
    await c.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 1, minAvailable: 1, minReports: 1, maxRounds: 1000, roundDeadlineMs: 60_000 } });
    await until(async () => (await app.flotilla.cluster!.view()).tasks.find((t) => t.id === 't')?.leader === 'solo', 'the lease taken');
    const dev = new ClusterDevice(() => [url], 0, 1, 't', TOKEN, c.getRunner('t').trainableLength);
    try {
      await until(() => dev.hellos === 1, 'the device admitted');
      // The leader selects from its fleet mirror (filled by the device's join message, which goes
      // through the very PUBLISH refused below): wait until it lists the device first.
      const fleet = (app.flotilla.cluster as unknown as { fleet: { eligible(task: string): string[] } }).fleet;
      await until(() => fleet.eligible('t').includes(dev.deviceId), 'the device in the leader\'s fleet mirror');

      await ctl.sendCommand(['ACL', 'SETUSER', 'default', '-publish']);
      const failed = nextEvent<{ state: string; round: number; failureReason?: string }>(c.events, 'round', (r) => r.state === 'failed', 60_000);
      await c.startTask('t');
      const f = await failed;
      expect(f.failureReason).toContain('could not be announced to the cluster');
      expect(dev.instructions.filter((i) => i.round === f.round)).toEqual([]); // no device was instructed

      await ctl.sendCommand(['ACL', 'SETUSER', 'default', '+publish']);
      const done = await nextEvent<{ state: string; round: number }>(c.events, 'round', (r) => r.state === 'done', 60_000);
      expect(done.round).toBeGreaterThan(f.round);
      expect(c.getRunner('t').record.currentVersion).toBeGreaterThanOrEqual(1);
    } finally {
      dev.close();
    }
  }, 120_000);
});
