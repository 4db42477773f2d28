import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { LocalEnrolmentQuota, type EnrolmentQuota } from '../../server/src/coordinator/enrolment-quota.js';
import { SharedEnrolmentQuota } from '../../server/src/cluster/shared-enrolment-quota.js';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';

if (redisSkipReason) console.warn(`skipping the Redis enrolment quota: ${redisSkipReason}`);

type Client = ReturnType<typeof createClient>;

/** A store's count that says how often it was read. */
function storeCount(n: number) {
  const s = { n, reads: 0, read: async () => (s.reads++, s.n) };
  return s;
}

/** The EnrolmentQuota contract (server/src/coordinator/enrolment-quota.ts), over any implementation. */
function quotaContract(name: string, make: () => Promise<EnrolmentQuota>) {
  describe(`EnrolmentQuota contract: ${name}`, () => {
    it('starts from the store, counts each take and refuses at the cap, reading the store only once', async () => {
      const q = await make();
      const stored = storeCount(2);
      expect(await q.take('tok-a', 'd1', 4, stored.read)).toBe(true);
      expect(await q.take('tok-a', 'd2', 4, stored.read)).toBe(true);
      expect(await q.take('tok-a', 'd3', 4, stored.read)).toBe(false);
      expect(await q.take('tok-a', 'd4', 4, stored.read)).toBe(false);
      expect(stored.reads).toBe(1);
      // an id already taken is not counted again (a device moving between nodes before its record is flushed)
      expect(await q.take('tok-a', 'd1', 4, stored.read)).toBe(true);
      // another credential has its own count
      expect(await q.take('tok-b', 'd1', 4, storeCount(0).read)).toBe(true);
    });

    it('never overshoots the cap under concurrent takes', async () => {
      const q = await make();
      const stored = storeCount(0);
      const got = await Promise.all(Array.from({ length: 25 }, (_, i) => q.take('tok-c', `d${i}`, 5, stored.read)));
      expect(got.filter(Boolean).length).toBe(5);
      // concurrent takes of one id count it once
      const same = await Promise.all(Array.from({ length: 5 }, () => q.take('tok-c2', 'x', 2, stored.read)));
      expect(same.every(Boolean)).toBe(true);
      expect(await q.take('tok-c2', 'y', 2, stored.read)).toBe(true);
      expect(await q.take('tok-c2', 'z', 2, stored.read)).toBe(false);
    });

    it('re-reads the store after recount (records were swept)', async () => {
      const q = await make();
      expect(await q.take('tok-d', 'd1', 3, storeCount(3).read)).toBe(false);
      await q.recount();
      const after = storeCount(1);
      expect(await q.take('tok-d', 'd1', 3, after.read)).toBe(true);
      expect(after.reads).toBe(1);
    });
  });
}

quotaContract('local (one coordinator)', async () => new LocalEnrolmentQuota());

describe.skipIf(redisSkipReason !== null)('shared enrolment quota on a real Redis', () => {
  let redis: TestRedis;
  const clients: Client[] = [];
  const connect = async () => {
    const c = createClient({ url: redis.url, disableOfflineQueue: true, socket: { reconnectStrategy: false, connectTimeout: 2000 } });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    redis = await startRedis();
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => (c.isOpen ? c.quit() : Promise.resolve())));
    await redis?.stop();
  });

  quotaContract('shared (Redis)', async () => {
    const c = await connect();
    await c.flushAll();
    return new SharedEnrolmentQuota(c);
  });

  it('two nodes count one credential together, and concurrent takes on both stop at the cap', async () => {
    const a = new SharedEnrolmentQuota(await connect());
    const b = new SharedEnrolmentQuota(await connect());
    const stored = storeCount(0);
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).take('tok-two-nodes', `d${i}`, 6, stored.read)));
    expect(got.filter(Boolean).length).toBe(6);
    expect(await a.take('tok-two-nodes', 'new-1', 6, stored.read)).toBe(false);
    expect(await b.take('tok-two-nodes', 'new-2', 6, stored.read)).toBe(false);
    // a device taken on one node moves to the other: still counted once
    const moved = `d${got.indexOf(true)}`;
    expect(await a.take('tok-two-nodes', moved, 6, stored.read)).toBe(true);
    expect(await b.take('tok-two-nodes', moved, 6, stored.read)).toBe(true);
  });

  it('a count expires and is re-seeded from the store: enrolments a dead node never flushed stop counting', async () => {
    const dead = new SharedEnrolmentQuota(await connect(), 300);
    const live = new SharedEnrolmentQuota(await connect(), 300);
    expect(await dead.take('tok-ttl', 'd1', 2, storeCount(0).read)).toBe(true);
    expect(await dead.take('tok-ttl', 'd2', 2, storeCount(0).read)).toBe(true); // counted, never reached the store
    expect(await live.take('tok-ttl', 'd3', 2, storeCount(0).read)).toBe(false);
    // wait for the expiry (an event, not a duration: the key is gone)
    const c = await connect();
    while ((await c.exists('fl:enrol:tok-ttl')) === 1) await new Promise((r) => setTimeout(r, 50));
    expect(await live.take('tok-ttl', 'd3', 2, storeCount(0).read)).toBe(true);
  });

  it('refuses with FL_ERR_CLUSTER_UNAVAILABLE while Redis is unreachable, never admitting uncounted', async () => {
    const q = new SharedEnrolmentQuota(await connect());
    await redis.down();
    try {
      await expect(q.take('tok-down', 'd1', 5, storeCount(0).read)).rejects.toMatchObject({ code: 'FL_ERR_CLUSTER_UNAVAILABLE' });
    } finally {
      await redis.up();
    }
  });
});
