import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlotillaApp } from '@flotilla/server';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { startServer } from '../helpers/server.js';
import { RawDevice } from '../helpers/raw-device.js';
import { until } from '../helpers/cluster.js';

if (redisSkipReason) console.warn(`skipping redis outage tests: ${redisSkipReason}`);

/**
 * One cluster node in this process while its Redis goes away and comes back empty. Broadcasting
 * to devices while Redis is down goes through socket.io's Redis adapter, which publishes without
 * handling the promise: a rejection there must not escape (Node ends a process on an unhandled
 * rejection, which is how every node of a three-node cluster died at a Redis restart). When Redis
 * is back, the node lists itself and its devices again without any manual step.
 */
describe.skipIf(redisSkipReason !== null)('cluster node through a Redis outage', () => {
  let redis: TestRedis;
  let app: FlotillaApp;
  let url: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(async () => {
    redis = await startRedis();
    ({ app, url } = await startServer({ deviceToken: 'dev-token-outage-0000000000', cluster: { redisUrl: redis.url, nodeId: 'solo', leaseMs: 600 } }));
    process.on('unhandledRejection', onUnhandled);
  }, 60_000);
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await app?.close();
    await redis?.stop();
  });

  it('broadcasts while Redis is down are dropped, not fatal, and the node re-registers its devices once it is back', async () => {
    const c = app.flotilla.coordinator;
    await c.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 2, minReports: 1, maxRounds: 1000, roundDeadlineMs: 5000 } });
    const dev = new RawDevice(url);
    const hello = await dev.hello('dev-token-outage-0000000000', 't', { deviceId: 'd1' });
    expect(hello.ok).toBe(true);
    const view = () => app.flotilla.cluster!.view();
    await until(async () => (await view()).nodes.find((n) => n.id === 'solo' && n.devices === 1), 'the node listed with its device');

    await redis.down();
    // Each state change broadcasts task:state to the task's room through the adapter.
    for (let i = 0; i < 3; i++) {
      await c.startTask('t');
      await c.pauseTask('t');
    }
    await new Promise((r) => setTimeout(r, 300)); // let the rejected publishes settle
    expect(unhandled.map(String)).toEqual([]);

    await redis.up();
    const cmd = (app.flotilla.cluster as unknown as { link: { cmd: { hGetAll(k: string): Promise<Record<string, string>> } } }).link.cmd;
    await until(async () => (await cmd.hGetAll('fl:fleet:t')).d1 === 'solo', 'the device re-registered in the fleet hash', 30_000);
    await until(async () => (await view()).tasks.find((t) => t.id === 't')?.leader === 'solo', 'the lease taken again', 30_000);
    expect(unhandled.map(String)).toEqual([]);
    dev.close();
  }, 120_000);
});
