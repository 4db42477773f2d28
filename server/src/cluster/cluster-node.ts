import { randomUUID } from 'node:crypto';
import type { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { AppError } from '../errors.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { CoordinatorLogger } from '../coordinator/deps.js';
import type { RoundCluster } from '../coordinator/round-cluster.js';
import type { AggregatorPartial } from '../fl/strategy.js';
import type { RoundRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { ClusterDeviceChannel, deviceRoom, taskRoom } from './cluster-channel.js';
import { ClusterInbox } from './cluster-inbox.js';
import { Fleet, type NodeInfo } from './fleet.js';
import { LeaseTable } from './leader-lease.js';
import { LeadershipLoop } from './leadership-loop.js';
import { CHANNEL, type Outgoing } from './messages.js';
import { PartialExchange } from './partial-exchange.js';
import { openRedisLink, type RedisLink } from './redis-link.js';
import { TaskQueue } from './task-queue.js';
import { SharedEnrolmentQuota } from './shared-enrolment-quota.js';

export interface ClusterOptions {
  redisUrl: string;
  /** Stable name of this node (default: a random id per process). */
  nodeId?: string;
  /** Leader lease and node liveness TTL (default 5000 ms); renewals every third of it. */
  leaseMs?: number;
  /** How long the leader waits for the other nodes' partials at round close (default 10 s). */
  partialTimeoutMs?: number;
}

export interface ClusterStats {
  [k: string]: number;
  takeovers: number;
  stepDowns: number;
  /** Commits this node attempted that the store refused as a stale leader's. */
  staleCommitsRefused: number;
  reportsFolded: number;
  reportBytesFolded: number;
  partialsSent: number;
  partialBytesSent: number;
  partialsReceived: number;
  partialBytesReceived: number;
}

export interface ClusterView {
  mode: 'cluster';
  node: string;
  leaseMs: number;
  nodes: Array<NodeInfo & { self: boolean }>;
  tasks: Array<{ id: string; leader: string | null }>;
}

/**
 * One coordinator node of a cluster (docs/cluster.md), over Redis: the composition of its parts
 * and their wiring to the coordinator. Implements RoundCluster for the task runners (the runners
 * stay the round state machine): leadership answers come from the lease table, report claims are
 * Redis keys, partials go through PartialExchange. Owns the Redis link, the node's stats and its
 * view for GET /api/v1/cluster. The other concepts live beside it: the lease and heartbeat loop
 * (leadership-loop.ts), what each cluster message does (cluster-inbox.ts), fleet membership
 * (fleet.ts), the close-time exchange of partials (partial-exchange.ts), per-task ordering
 * (task-queue.ts).
 */
export class ClusterNode implements RoundCluster {
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly channel: ClusterDeviceChannel;
  readonly stats: ClusterStats = {
    takeovers: 0,
    stepDowns: 0,
    staleCommitsRefused: 0,
    reportsFolded: 0,
    reportBytesFolded: 0,
    partialsSent: 0,
    partialBytesSent: 0,
    partialsReceived: 0,
    partialBytesReceived: 0,
  };
  private readonly leases: LeaseTable;
  private readonly fleet: Fleet;
  private readonly queue: TaskQueue;
  private readonly partials: PartialExchange;
  private readonly leadership: LeadershipLoop;
  private readonly inbox: ClusterInbox;
  private readonly startedAt = Date.now();
  url: string | null = null;
  /** Called when another node changed versions, aliases or deployments (serving re-syncs). */
  onServingChange: (() => void) | null = null;

  private constructor(
    private readonly link: RedisLink,
    private readonly coordinator: Coordinator,
    store: Store,
    private readonly logger: CoordinatorLogger,
    opts: ClusterOptions,
  ) {
    this.nodeId = opts.nodeId ?? `node-${randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.leaseMs ?? 5000;
    this.leases = new LeaseTable(link.cmd, this.nodeId, this.leaseMs);
    this.fleet = new Fleet(link.cmd, this.nodeId, this.leaseMs);
    this.channel = new ClusterDeviceChannel(coordinator.sessions, this.fleet);
    this.queue = new TaskQueue(logger);
    this.partials = new PartialExchange(link.cmd, this.nodeId, opts.partialTimeoutMs ?? 10_000, this.stats, (m) => this.publishNow(m));
    const parts = { nodeId: this.nodeId, leases: this.leases, fleet: this.fleet, store, coordinator, logger, queue: this.queue };
    this.leadership = new LeadershipLoop({ ...parts, leaseMs: this.leaseMs, stats: this.stats, info: () => this.info(), localDevices: () => this.localDevices() });
    this.inbox = new ClusterInbox({ ...parts, leadership: this.leadership, partials: this.partials, servingChanged: () => this.onServingChange?.() });
  }

  /** Connect to Redis and join the cluster; call before coordinator.init(). */
  static async open(opts: ClusterOptions, coordinator: Coordinator, store: Store, logger: CoordinatorLogger): Promise<ClusterNode> {
    const link = await openRedisLink(opts.redisUrl, logger);
    const node = new ClusterNode(link, coordinator, store, logger, opts);
    coordinator.useCluster(node, node.channel);
    coordinator.clients.useQuota(new SharedEnrolmentQuota(link.cmd)); // one enrolment count per credential across nodes
    await link.sub.subscribe(CHANNEL, (raw) => node.inbox.receive(raw));
    coordinator.sessions.listen({
      opened: (s) => {
        void s.socket.join([deviceRoom(s.deviceId), taskRoom(s.taskId)]);
        node.fleet.join(s.taskId, s.deviceId).catch((err) => logger.warn({ err: String(err) }, 'cluster: fleet join not written (re-registered at the next heartbeat)'));
        node.publish({ t: 'join', task: s.taskId, device: s.deviceId });
      },
      closed: (s) => {
        node.fleet.leave(s.taskId, s.deviceId).catch(() => undefined);
        node.publish({ t: 'leave', task: s.taskId, device: s.deviceId });
      },
    });
    coordinator.events.on('task', (t: { id: string }) => node.publish({ t: 'task', task: t.id }));
    coordinator.events.on('round', (r: RoundRecord) => {
      if (r.state === 'failed' && r.failureReason?.includes('FL_ERR_CLUSTER_STALE_LEADER')) node.stats.staleCommitsRefused++;
    });
    return node;
  }

  /** Plug socket.io into the Redis adapter and start the lease/heartbeat loop (after coordinator.init()). */
  attach(io: Server): void {
    io.adapter(createAdapter(this.link.adapterPub, this.link.adapterSub));
    this.channel.io = io;
    this.leadership.start();
  }

  // ---- RoundCluster ----

  leads(taskId: string): boolean {
    return this.leases.held(taskId) && !this.leadership.restoring(taskId);
  }

  fence(taskId: string): number | undefined {
    return this.leases.token(taskId);
  }

  async roundOpened(record: RoundRecord, plan: unknown, uploadKey?: string): Promise<void> {
    this.partials.opened(record.taskId);
    await this.publishNow({ t: 'open', task: record.taskId, fence: this.fence(record.taskId) ?? 0, record: record as never, plan: plan as never, ...(uploadKey ? { uploadKey } : {}) });
  }

  async claimReport(taskId: string, round: number, deviceId: string): Promise<boolean> {
    try {
      return (await this.link.cmd.set(`fl:rep:${taskId}:${round}:${deviceId}`, this.nodeId, { NX: true, PX: 3_600_000 })) === 'OK';
    } catch (err) {
      throw new AppError('FL_ERR_CLUSTER_UNAVAILABLE', { why: String(err) });
    }
  }

  async releaseReport(taskId: string, round: number, deviceId: string): Promise<void> {
    await this.link.cmd.del(`fl:rep:${taskId}:${round}:${deviceId}`);
  }

  reported(taskId: string, round: number, deviceId: string, bytes: number): void {
    this.stats.reportsFolded++;
    this.stats.reportBytesFolded += bytes;
    this.publish({ t: 'reported', task: taskId, round, device: deviceId, bytes });
  }

  deviceGone(taskId: string, deviceId: string, reason: string, grace: boolean): void {
    this.publish({ t: 'gone', task: taskId, device: deviceId, reason, grace });
  }

  gatherPartials(taskId: string, round: number): Promise<AggregatorPartial[]> {
    return this.partials.gather(taskId, round);
  }

  roundEnded(taskId: string, round: number, state: 'done' | 'failed', reason?: string): void {
    this.partials.ended(taskId);
    this.publish({ t: 'end', task: taskId, round, state, ...(reason ? { reason: reason.slice(0, 500) } : {}) });
  }

  evalReported(taskId: string, deviceId: string, report: unknown): void {
    this.publish({ t: 'eval', task: taskId, device: deviceId, report });
  }

  /** Follower device events wait until the runner has taken the leader's latest round. */
  ready(taskId: string): Promise<void> {
    return this.queue.ready(taskId);
  }

  /** Announce a change serving caches on other nodes depend on (versions, aliases, deployments). */
  announceServing(what: string): void {
    this.publish({ t: 'serving', what });
  }

  private publish(m: Outgoing): void {
    this.publishNow(m).catch((err) => this.logger.warn({ err: String(err), t: m.t }, 'cluster: message not sent (redis down?)'));
  }

  private async publishNow(m: Outgoing): Promise<void> {
    await this.link.pub.publish(CHANNEL, JSON.stringify({ ...m, from: this.nodeId }));
  }

  private localDevices(): Map<string, string[]> {
    const m = new Map<string, string[]>();
    for (const s of this.coordinator.sessions.all()) {
      const xs = m.get(s.taskId) ?? [];
      xs.push(s.deviceId);
      m.set(s.taskId, xs);
    }
    return m;
  }

  private info(): NodeInfo {
    return {
      id: this.nodeId,
      url: this.url,
      startedAt: this.startedAt,
      heartbeatAt: Date.now(),
      devices: this.coordinator.sessions.size,
      leads: this.leases.tasks().filter((t) => this.leases.held(t)),
      stats: { ...this.stats },
    };
  }

  async view(): Promise<ClusterView> {
    const self = this.info();
    const nodes = this.fleet.nodes().map((n) => (n.id === this.nodeId ? { ...self, self: true } : { ...n, self: false }));
    if (!nodes.some((n) => n.self)) nodes.push({ ...self, self: true });
    const tasks = [];
    for (const r of this.coordinator.listRunners()) tasks.push({ id: r.id, leader: await this.leases.holder(r.id).catch(() => null) });
    return { mode: 'cluster', node: this.nodeId, leaseMs: this.leaseMs, nodes, tasks };
  }

  /** Leave the cluster: give up leases (another node takes over at once) and forget this node's devices. */
  async close(): Promise<void> {
    this.leadership.stop();
    await this.leases.releaseAll().catch(() => undefined);
    await this.fleet.forgetSelf(this.localDevices()).catch(() => undefined);
    await this.link.close();
  }
}
