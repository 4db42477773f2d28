import { AppError } from '../errors.js';
import type { EnrolmentQuota } from '../coordinator/enrolment-quota.js';
import type { RedisClient } from './redis-link.js';

/**
 * KEYS[1]: the credential's hash; its field '#' is the store's count when it was seeded, and one
 * field 'id:<device id>' per id taken since. ARGV: id, the store's count ('' when not read),
 * cap, TTL. Returns -1 when the count is unknown and no store count was given, 0 when the cap is
 * reached, 1 when the id is (now) counted. The hash expires ARGV[4] ms after seeding (HSET keeps
 * the TTL), so the count is re-read from the store at least that often.
 */
const TAKE = `if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[2] == '' then return -1 end
  redis.call('HSET', KEYS[1], '#', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
local field = 'id:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], field) == 1 then return 1 end
local n = tonumber(redis.call('HGET', KEYS[1], '#')) + redis.call('HLEN', KEYS[1]) - 1
if n >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], field, '1')
return 1`;

const PREFIX = 'fl:enrol:';

/**
 * The enrolment count of cluster mode (docs/cluster.md, "Known limits"): one Redis hash per
 * credential, `fl:enrol:<token id>` (the bootstrap token: the empty id), shared by every node, so
 * a credential enrols at most `cap` device ids across the whole cluster, whichever nodes its
 * devices reach; an id taken on one node is not counted again when the device moves to another
 * before its record is flushed. Check and change are one Lua script, so concurrent hellos on
 * different nodes cannot overshoot. The count is seeded from the store's and expires `recountMs`
 * after seeding: enrolments a dead node counted but never flushed to the store stop counting then, and
 * the count can fall short by at most the enrolments other nodes have not flushed yet (the
 * write-behind interval, one second) when it is re-seeded. Redis unreachable: the hello is
 * refused with FL_ERR_CLUSTER_UNAVAILABLE (devices retry), never admitted uncounted.
 */
export class SharedEnrolmentQuota implements EnrolmentQuota {
  constructor(
    private readonly redis: RedisClient,
    private readonly recountMs = 60_000,
  ) {}

  async take(key: string, id: string, cap: number, stored: () => Promise<number>): Promise<boolean> {
    try {
      const run = (seed: string) => this.redis.eval(TAKE, { keys: [PREFIX + key], arguments: [id, seed, String(cap), String(this.recountMs)] });
      let r = await run('');
      if (r === -1) r = await run(String(await stored()));
      return r === 1;
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('FL_ERR_CLUSTER_UNAVAILABLE', { why: String(err) });
    }
  }

  async recount(): Promise<void> {
    const keys: string[] = [];
    for await (const k of this.redis.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 500 })) keys.push(...(Array.isArray(k) ? k : [k]));
    if (keys.length) await this.redis.del(keys);
  }
}
