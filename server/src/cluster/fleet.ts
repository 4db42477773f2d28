import type { RedisClient } from './redis-link.js';

const REMOVE_IF_MINE = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end`;

export interface NodeInfo {
  id: string;
  url: string | null;
  startedAt: number;
  heartbeatAt: number;
  devices: number;
  /** Task ids this node leads. */
  leads: string[];
  stats: Record<string, number>;
}

/**
 * Fleet membership across nodes (docs/cluster.md). In Redis: `fl:node:<id>` (NodeInfo JSON, TTL
 * nodeTtlMs, rewritten at each heartbeat; its expiry is the node's death) and one hash per task
 * `fl:fleet:<task>` mapping device id -> node id. Each node keeps a mirror, updated by join/leave
 * messages as they happen and re-read in full at each heartbeat, so selection draws from the
 * whole fleet without asking any node. Contract: `eligible` lists devices whose node is alive in
 * the last read (a dead node's devices leave the mirror within one node TTL).
 */
export class Fleet {
  private readonly byTask = new Map<string, Map<string, string>>();
  private readonly deviceNode = new Map<string, string>();
  private liveNodes = new Map<string, NodeInfo>();

  constructor(
    private readonly redis: RedisClient,
    readonly nodeId: string,
    readonly nodeTtlMs: number,
  ) {}

  private key(taskId: string): string {
    return `fl:fleet:${taskId}`;
  }

  /** Mirror update from a join/leave message (or this node's own session table). */
  apply(taskId: string, deviceId: string, nodeId: string | null): void {
    let m = this.byTask.get(taskId);
    if (!m) this.byTask.set(taskId, (m = new Map()));
    if (nodeId === null) {
      m.delete(deviceId);
      this.deviceNode.delete(deviceId);
    } else {
      m.set(deviceId, nodeId);
      this.deviceNode.set(deviceId, nodeId);
      if (!this.liveNodes.has(nodeId)) this.liveNodes.set(nodeId, { id: nodeId, url: null, startedAt: 0, heartbeatAt: Date.now(), devices: 0, leads: [], stats: {} });
    }
  }

  async join(taskId: string, deviceId: string): Promise<void> {
    this.apply(taskId, deviceId, this.nodeId);
    await this.redis.hSet(this.key(taskId), deviceId, this.nodeId);
  }

  async leave(taskId: string, deviceId: string): Promise<void> {
    if (this.deviceNode.get(deviceId) === this.nodeId) this.apply(taskId, deviceId, null);
    await this.redis.eval(REMOVE_IF_MINE, { keys: [this.key(taskId)], arguments: [deviceId, this.nodeId] });
  }

  /**
   * Write this node's record; when Redis had forgotten it (first beat, or Redis restarted without
   * its data) re-register `local` (task -> device ids). Then re-read the fleet of `tasks`.
   */
  async heartbeat(info: NodeInfo, local: Map<string, string[]>, tasks: string[]): Promise<void> {
    const prev = await this.redis.set(`fl:node:${info.id}`, JSON.stringify(info), { PX: this.nodeTtlMs, GET: true });
    if (prev === null) {
      for (const [taskId, ids] of local) if (ids.length) await this.redis.hSet(this.key(taskId), Object.fromEntries(ids.map((d) => [d, this.nodeId])));
    }
    await this.redis.sAdd('fl:nodes', info.id);
    await this.refresh(tasks);
  }

  /** Re-read live nodes and the fleets of `tasks`; entries of dead nodes are removed from Redis too. */
  async refresh(tasks: string[]): Promise<void> {
    const ids = await this.redis.sMembers('fl:nodes');
    const raw = ids.length ? await this.redis.mGet(ids.map((id) => `fl:node:${id}`)) : [];
    const live = new Map<string, NodeInfo>();
    ids.forEach((id, i) => {
      if (raw[i]) live.set(id, JSON.parse(raw[i]!) as NodeInfo);
    });
    const dead = ids.filter((id) => !live.has(id));
    if (dead.length) await this.redis.sRem('fl:nodes', dead);
    this.liveNodes = live;
    for (const taskId of tasks) {
      const all = await this.redis.hGetAll(this.key(taskId));
      const m = new Map<string, string>();
      const gone: string[] = [];
      for (const [dev, node] of Object.entries(all)) {
        if (live.has(node)) m.set(dev, node);
        else gone.push(dev);
      }
      if (gone.length) await this.redis.hDel(this.key(taskId), gone);
      const old = this.byTask.get(taskId);
      if (old) for (const dev of old.keys()) if (!m.has(dev)) this.deviceNode.delete(dev);
      for (const [dev, node] of m) this.deviceNode.set(dev, node);
      this.byTask.set(taskId, m);
    }
  }

  /** A node stopped cleanly: its record goes at once. */
  async forgetSelf(local: Map<string, string[]>): Promise<void> {
    for (const [taskId, ids] of local) if (ids.length) await this.redis.hDel(this.key(taskId), ids);
    await this.redis.del(`fl:node:${this.nodeId}`);
    await this.redis.sRem('fl:nodes', this.nodeId);
  }

  eligible(taskId: string): string[] {
    const m = this.byTask.get(taskId);
    if (!m) return [];
    const out: string[] = [];
    for (const [dev, node] of m) if (this.liveNodes.has(node)) out.push(dev);
    return out;
  }

  nodeOf(deviceId: string): string | undefined {
    const n = this.deviceNode.get(deviceId);
    return n !== undefined && this.liveNodes.has(n) ? n : undefined;
  }

  nodes(): NodeInfo[] {
    return [...this.liveNodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  devicesOn(nodeId: string): number {
    let n = 0;
    for (const node of this.deviceNode.values()) if (node === nodeId) n++;
    return n;
  }
}
