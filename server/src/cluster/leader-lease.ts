import type { RedisClient } from './redis-link.js';

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RAISE = `local c = tonumber(redis.call('GET', KEYS[1]) or '0') if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1`;

/**
 * One leader per task (docs/cluster.md): a Redis key `fl:lease:<task>` holding the node id, set
 * with NX and a TTL and renewed while the node lives, plus a fencing token from INCR on
 * `fl:fence:<task>` taken at each acquisition, which the store checks at commit.
 *
 * Contract of `held`: true only until `renewStart + ttl * 0.8` by this process's clock, where
 * renewStart is when the last successful SET/renew was sent. Redis expires the key no earlier
 * than ttl after it received that command, so whenever `held` is true no other node can hold the
 * lease (clock rates assumed to agree within 20 %). A process paused past that instant answers
 * false when it wakes, before any round can start; a commit already in flight is refused by the
 * store's fence.
 */
export class LeaseTable {
  private readonly mine = new Map<string, { token: number; until: number }>();

  constructor(
    private readonly redis: RedisClient,
    readonly nodeId: string,
    readonly ttlMs: number,
  ) {}

  private key(taskId: string): string {
    return `fl:lease:${taskId}`;
  }

  held(taskId: string): boolean {
    const l = this.mine.get(taskId);
    return l !== undefined && Date.now() < l.until;
  }

  token(taskId: string): number | undefined {
    return this.mine.get(taskId)?.token;
  }

  /** Tasks this node believes it leads (held or lapsing). */
  tasks(): string[] {
    return [...this.mine.keys()];
  }

  /** Try to take a free lease; returns the new fencing token, or null when another node holds it. */
  async tryAcquire(taskId: string): Promise<number | null> {
    const t0 = Date.now();
    const ok = await this.redis.set(this.key(taskId), this.nodeId, { NX: true, PX: this.ttlMs });
    if (ok !== 'OK') return null;
    const token = await this.redis.incr(`fl:fence:${taskId}`);
    this.mine.set(taskId, { token, until: t0 + this.ttlMs * 0.8 });
    return token;
  }

  /**
   * After Redis lost its data (restart without persistence) the counter may restart below the
   * store's fence: the lease holder lifts it past `atLeast` and takes a fresh token.
   */
  async reissue(taskId: string, atLeast: number): Promise<number> {
    await this.redis.eval(RAISE, { keys: [`fl:fence:${taskId}`], arguments: [String(atLeast)] });
    const token = await this.redis.incr(`fl:fence:${taskId}`);
    const l = this.mine.get(taskId);
    if (l) l.token = token;
    return token;
  }

  /** Extend a lease this node holds; false when it was lost (expired, or another node took it). */
  async renew(taskId: string): Promise<boolean> {
    const l = this.mine.get(taskId);
    if (!l) return false;
    const t0 = Date.now();
    const r = await this.redis.eval(RENEW, { keys: [this.key(taskId)], arguments: [this.nodeId, String(this.ttlMs)] });
    if (r === 1) {
      l.until = t0 + this.ttlMs * 0.8;
      return true;
    }
    this.mine.delete(taskId);
    return false;
  }

  /** Forget a lease locally (lost or lapsed). */
  drop(taskId: string): void {
    this.mine.delete(taskId);
  }

  /** Give up every lease at shutdown so another node takes over at once. */
  async releaseAll(): Promise<void> {
    const ids = [...this.mine.keys()];
    this.mine.clear();
    await Promise.allSettled(ids.map((id) => this.redis.eval(RELEASE, { keys: [this.key(id)], arguments: [this.nodeId] })));
  }

  async holder(taskId: string): Promise<string | null> {
    return this.redis.get(this.key(taskId));
  }
}
