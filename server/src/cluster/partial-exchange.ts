import { commandOptions } from 'redis';
import type { AggregatorPartial } from '../fl/strategy.js';
import type { ClusterMessage, Outgoing } from './messages.js';
import { decodePartial, encodePartial } from './partial-codec.js';
import type { RedisClient } from './redis-link.js';

type PartialMessage = Extract<ClusterMessage, { t: 'partial' }>;

/** Counters of partials moved (part of the node's stats in GET /api/v1/cluster). */
export interface PartialStats {
  partialsSent: number;
  partialBytesSent: number;
  partialsReceived: number;
  partialBytesReceived: number;
}

/** A follower's shard of a round at close: its devices' reports folded, and which devices those were. */
export interface Shard {
  partial: AggregatorPartial;
  devices: string[];
}

/**
 * Hierarchical aggregation's exchange at round close (docs/cluster.md, "A round in cluster mode",
 * step 3). Leader side: it notes which nodes said they folded reports of the round in flight
 * (`reporter`), then `gather` publishes `close` and waits until every such node (and any other
 * that answers with a shard) has answered `partial`, and reads each shard from Redis
 * (`fl:partial:<task>:<round>:<node>`, one value of 8 x parameters bytes plus a header).
 * Follower side: `answer` stores this node's shard (or says it has none) and publishes `partial`.
 *
 * Contract: `gather` resolves with one partial per node that answered with a shard, or rejects
 * when a node that folded reports has not answered within `timeoutMs` or its value is gone (the
 * round then fails and is retried); raw reports never cross nodes.
 */
export class PartialExchange {
  /** Per task: nodes that told the leader they folded reports of the round in flight. */
  private readonly reporters = new Map<string, Set<string>>();
  private readonly gathers = new Map<string, (m: PartialMessage) => void>();

  constructor(
    private readonly redis: RedisClient,
    private readonly nodeId: string,
    private readonly timeoutMs: number,
    private readonly stats: PartialStats,
    private readonly publish: (m: Outgoing) => Promise<void>,
  ) {}

  /** The leader opened a round of `taskId`: no node has reported yet. */
  opened(taskId: string): void {
    this.reporters.set(taskId, new Set());
  }

  /** Leader: `node` folded a report of the round in flight. */
  reporter(taskId: string, node: string): void {
    this.reporters.get(taskId)?.add(node);
  }

  ended(taskId: string): void {
    this.reporters.delete(taskId);
  }

  /** Leader: a `partial` message arrived (for a gather in progress, or too late and ignored). */
  received(m: PartialMessage): void {
    this.gathers.get(`${m.task}\u0000${m.round}`)?.(m);
  }

  async gather(taskId: string, round: number): Promise<AggregatorPartial[]> {
    const expected = new Set(this.reporters.get(taskId) ?? []);
    expected.delete(this.nodeId);
    const answered = new Map<string, boolean>();
    const key = `${taskId}\u0000${round}`;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.gathers.delete(key);
        const missing = [...expected].filter((n) => !answered.has(n));
        reject(new Error(`partials missing from nodes ${missing.join(', ')} after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const check = () => {
        if ([...expected].every((n) => answered.has(n))) {
          clearTimeout(timer);
          this.gathers.delete(key);
          resolve();
        }
      };
      this.gathers.set(key, (m) => {
        answered.set(m.from, m.has);
        if (m.has) expected.add(m.from); // folded reports whose notice had not arrived yet
        check();
      });
      check();
    });
    // Both at once: when the publish fails (Redis down) `done` is still awaited, so its timer's
    // rejection later is handled instead of ending the process as an unhandled rejection.
    await Promise.all([this.publish({ t: 'close', task: taskId, round }), done]);
    const out: AggregatorPartial[] = [];
    for (const [node, has] of answered) {
      if (!has) continue;
      const buf = await this.redis.get(commandOptions({ returnBuffers: true }), `fl:partial:${taskId}:${round}:${node}`);
      if (!buf) throw new Error(`partial of node ${node} vanished from Redis`);
      this.stats.partialsReceived++;
      this.stats.partialBytesReceived += buf.length;
      out.push(decodePartial(buf));
    }
    return out;
  }

  /** Follower: the leader closes `round`; hand over this node's shard (null: none). */
  async answer(taskId: string, round: number, shard: Shard | null): Promise<void> {
    if (!shard) return this.publish({ t: 'partial', task: taskId, round, has: false, bytes: 0 });
    const buf = encodePartial({ sum: shard.partial.sum, meta: { ...shard.partial.meta, devices: shard.devices } });
    await this.redis.set(`fl:partial:${taskId}:${round}:${this.nodeId}`, buf, { PX: 120_000 });
    this.stats.partialsSent++;
    this.stats.partialBytesSent += buf.length;
    await this.publish({ t: 'partial', task: taskId, round, has: true, bytes: buf.length });
  }
}
