import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import { SqliteStore } from '../../server/src/store/sqlite-store.js';
import { LeaseTable } from '../../server/src/cluster/leader-lease.js';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { expectCode, round, task, version } from '../store/fixtures.js';

if (redisSkipReason) console.warn(`skipping leader fencing tests: ${redisSkipReason}`);

/**
 * The split-brain case step by step, with real Redis and two SQLite connections to one file (two
 * nodes on one host): leader A pauses past its lease (it simply stops renewing), B takes the lease
 * with a higher token and claims it in the store; A wakes and tries to commit its round: refused.
 */
describe.skipIf(redisSkipReason !== null)('leader lease and store fencing', () => {
  let redis: TestRedis;
  let dir: string;
  beforeAll(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'flotilla-fence-'));
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a paused ex-leader cannot commit once a newer leader claimed the task', async () => {
    const ca = createClient({ url: redis.url });
    const cb = createClient({ url: redis.url });
    await Promise.all([ca.connect(), cb.connect()]);
    const sa = new SqliteStore({ dataDir: dir });
    const sb = new SqliteStore({ dataDir: dir });
    await sa.init();
    await sb.init();
    try {
      const a = new LeaseTable(ca, 'a', 300);
      const b = new LeaseTable(cb, 'b', 300);
      await sa.createTask(task('t'), version('t', 1));
      const ta = (await a.tryAcquire('t'))!;
      await sa.claimFence('t', ta);
      expect(a.held('t')).toBe(true);
      expect(await b.tryAcquire('t')).toBeNull(); // one leader at a time
      await sa.saveRound(round('t', 1));
      // A pauses: no renewals. Its own clock tells it the lease is gone before Redis frees it.
      while (a.held('t')) await new Promise((r) => setTimeout(r, 20));
      let tb: number | null = null;
      while (tb === null) {
        tb = await b.tryAcquire('t');
        if (tb === null) await new Promise((r) => setTimeout(r, 20));
      }
      expect(tb).toBeGreaterThan(ta);
      await sb.claimFence('t', tb);
      // A wakes and commits the round it was running, with its old token: refused, nothing written.
      await expectCode(
        sa.commitRound({
          task: { id: 't', currentVersion: 2, nextRound: 2 },
          round: round('t', 1, { state: 'done', committedVersion: 2 }),
          version: version('t', 2),
          by: 'coordinator@a',
          fence: ta,
        }),
        'FL_ERR_CLUSTER_STALE_LEADER',
      );
      expect(await sb.getVersion('t', 2)).toBeNull();
      expect(await a.renew('t')).toBe(false); // and its renewal tells it it lost the lease
      // B commits with its token.
      await sb.commitRound({
        task: { id: 't', currentVersion: 2, nextRound: 2 },
        round: round('t', 1, { state: 'done', committedVersion: 2 }),
        version: version('t', 2),
        by: 'coordinator@b',
        fence: tb,
      });
      expect((await sa.getAlias('t', 'latest'))!.version).toBe(2);
      // Redis lost its data (restart without persistence): the counter restarts below the store's
      // fence; the holder lifts it past the store's value and claims again.
      await cb.flushAll();
      const tc = (await b.tryAcquire('t'))!;
      expect(tc).toBeLessThan(tb);
      await expectCode(sb.claimFence('t', tc), 'FL_ERR_CLUSTER_STALE_LEADER');
      const td = await b.reissue('t', tb);
      expect(td).toBeGreaterThan(tb);
      await sb.claimFence('t', td);
    } finally {
      await sa.close();
      await sb.close();
      await Promise.all([ca.quit(), cb.quit()]);
    }
  }, 60_000);
});
