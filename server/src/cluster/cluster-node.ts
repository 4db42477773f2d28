import { randomUUID } from 'node:crypto';
import type { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { commandOptions } from 'redis';
import { TaskPlanSchema, type EvalReport } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { CoordinatorLogger } from '../coordinator/deps.js';
import type { RoundCluster } from '../coordinator/round-cluster.js';
import type { AggregatorPartial } from '../fl/strategy.js';
import type { RoundRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { ClusterDeviceChannel, deviceRoom, taskRoom } from './cluster-channel.js';
import { Fleet, type NodeInfo } from './fleet.js';
import { LeaseTable } from './leader-lease.js';
import { CHANNEL, ClusterMessageSchema, type ClusterMessage, type Outgoing } from './messages.js';
import { decodePartial, encodePartial } from './partial-codec.js';

import { TaskRunner } from '../coordinator/task-runner.js';
import type { Runner } from '../coordinator/async/runner-for.js';
function roundRunnerOf(r: Runner | undefined): TaskRunner | undefined {
  return r instanceof TaskRunner ? r : undefined;
}
import { openRedisLink, type RedisLink } from './redis-link.js';

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
 * One coordinator node of a cluster (docs/cluster.md): leader leases and fencing, fleet
 * membership, the round's cross-node steps (open, reported, close -> partials, end), and change
 * announcements for the other nodes' caches, all over Redis. Implements RoundCluster for the task
 * runners; the runners stay the round state machine.
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
  /** Per task: nodes that told the leader they folded reports of the round in flight. */
  private readonly reporters = new Map<string, Set<string>>();
  private readonly gathers = new Map<string, (m: Extract<ClusterMessage, { t: 'partial' }>) => void>();
  /** Per task: work on the runner (follow, reload) runs in order; device events wait for it. */
  private readonly chains = new Map<string, Promise<void>>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticking = false;
  private readonly startedAt = Date.now();
  url: string | null = null;
  /** Called when another node changed versions, aliases or deployments (serving re-syncs). */
  onServingChange: (() => void) | null = null;

  private constructor(
    private readonly link: RedisLink,
    private readonly coordinator: Coordinator,
    private readonly store: Store,
    private readonly logger: CoordinatorLogger,
    opts: ClusterOptions,
  ) {
    this.nodeId = opts.nodeId ?? `node-${randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.leaseMs ?? 5000;
    this.partialTimeoutMs = opts.partialTimeoutMs ?? 10_000;
    this.leases = new LeaseTable(link.cmd, this.nodeId, this.leaseMs);
    this.fleet = new Fleet(link.cmd, this.nodeId, this.leaseMs);
    this.channel = new ClusterDeviceChannel(coordinator.sessions, this.fleet);
  }
  private readonly partialTimeoutMs: number;

  /** Connect to Redis and join the cluster; call before coordinator.init(). */
  static async open(opts: ClusterOptions, coordinator: Coordinator, store: Store, logger: CoordinatorLogger): Promise<ClusterNode> {
    const link = await openRedisLink(opts.redisUrl, logger);
    const node = new ClusterNode(link, coordinator, store, logger, opts);
    coordinator.useCluster(node, node.channel);
    await link.sub.subscribe(CHANNEL, (raw) => node.onMessage(raw));
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
    const every = Math.max(100, Math.floor(this.leaseMs / 3));
    this.timer = setInterval(() => void this.tick(), every);
    void this.tick();
  }

  // ---- RoundCluster ----

  leads(taskId: string): boolean {
    return this.leases.held(taskId);
  }

  fence(taskId: string): number | undefined {
    return this.leases.token(taskId);
  }

  async roundOpened(record: RoundRecord, plan: unknown): Promise<void> {
    this.reporters.set(record.taskId, new Set());
    await this.publishNow({ t: 'open', task: record.taskId, fence: this.fence(record.taskId) ?? 0, record: record as never, plan: plan as never });
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

  async gatherPartials(taskId: string, round: number): Promise<AggregatorPartial[]> {
    const expected = new Set(this.reporters.get(taskId) ?? []);
    expected.delete(this.nodeId);
    const answered = new Map<string, boolean>();
    const key = `${taskId}\u0000${round}`;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.gathers.delete(key);
        const missing = [...expected].filter((n) => !answered.has(n));
        reject(new Error(`partials missing from nodes ${missing.join(', ')} after ${this.partialTimeoutMs} ms`));
      }, this.partialTimeoutMs);
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
    await this.publishNow({ t: 'close', task: taskId, round });
    await done;
    const out: AggregatorPartial[] = [];
    for (const [node, has] of answered) {
      if (!has) continue;
      const buf = await this.link.cmd.get(commandOptions({ returnBuffers: true }), `fl:partial:${taskId}:${round}:${node}`);
      if (!buf) throw new Error(`partial of node ${node} vanished from Redis`);
      this.stats.partialsReceived++;
      this.stats.partialBytesReceived += buf.length;
      out.push(decodePartial(buf));
    }
    return out;
  }

  roundEnded(taskId: string, round: number, state: 'done' | 'failed', reason?: string): void {
    this.reporters.delete(taskId);
    this.publish({ t: 'end', task: taskId, round, state, ...(reason ? { reason: reason.slice(0, 500) } : {}) });
  }

  evalReported(taskId: string, deviceId: string, report: unknown): void {
    this.publish({ t: 'eval', task: taskId, device: deviceId, report });
  }

  /** Follower device events wait until the runner has taken the leader's latest round. */
  ready(taskId: string): Promise<void> {
    return this.chains.get(taskId) ?? Promise.resolve();
  }

  /** Announce a change serving caches on other nodes depend on (versions, aliases, deployments). */
  announceServing(what: string): void {
    this.publish({ t: 'serving', what });
  }

  // ---- messages ----

  private publish(m: Outgoing): void {
    this.publishNow(m).catch((err) => this.logger.warn({ err: String(err), t: m.t }, 'cluster: message not sent (redis down?)'));
  }

  private async publishNow(m: Outgoing): Promise<void> {
    await this.link.pub.publish(CHANNEL, JSON.stringify({ ...m, from: this.nodeId }));
  }

  /** Run `fn` after earlier work on the task's runner (so 'open' then 'end' apply in order). */
  private chain(taskId: string, fn: () => Promise<void>): void {
    const next = (this.chains.get(taskId) ?? Promise.resolve()).then(fn).catch((err) => this.logger.error({ err, task: taskId }, 'cluster: task update failed'));
    this.chains.set(taskId, next);
  }

  private onMessage(raw: string): void {
    let m: ClusterMessage;
    try {
      m = ClusterMessageSchema.parse(JSON.parse(raw));
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'cluster: malformed message dropped');
      return;
    }
    if (m.t === 'serving') {
      if (m.from !== this.nodeId) this.onServingChange?.();
      return;
    }
    if (m.t === 'partial') return this.gathers.get(`${m.task}\u0000${m.round}`)?.(m);
    if (m.from === this.nodeId) return;
    // Cluster mode refuses async plans (checkClusterPlan), so every runner here runs rounds.
    const runner = () => roundRunnerOf(this.coordinator.maybeRunner(m.task));
    switch (m.t) {
      case 'join':
        this.fleet.apply(m.task, m.device, m.from);
        if (this.leads(m.task)) runner()?.poke();
        return;
      case 'leave':
        if (this.fleet.nodeOf(m.device) === m.from) this.fleet.apply(m.task, m.device, null);
        return;
      case 'reported':
        if (!this.leads(m.task)) return;
        this.reporters.get(m.task)?.add(m.from);
        void runner()?.onRemoteReport(m.device, m.round, m.bytes);
        return;
      case 'gone':
        if (this.leads(m.task)) runner()?.onDeviceGone(m.device, m.reason, m.grace);
        return;
      case 'eval':
        if (!this.leads(m.task)) return;
        try {
          runner()?.onEvalReport(m.device, m.report as EvalReport);
        } catch {
          /* late or unexpected evaluation reports are dropped, as on one node */
        }
        return;
      case 'open': {
        if (this.leases.tasks().includes(m.task) && m.fence > (this.fence(m.task) ?? 0)) this.stepDown(m.task, 'a newer leader opened a round');
        const record = m.record as unknown as RoundRecord;
        const plan = TaskPlanSchema.parse(m.plan);
        return this.chain(m.task, async () => {
          const task = await this.store.getTask(m.task);
          const r = runner() ?? roundRunnerOf(await this.coordinator.load(m.task, 'keep'));
          if (!task || !r || this.leads(m.task)) return;
          r.follow(task, r.globalWeights, record, plan);
        });
      }
      case 'close':
        return this.chain(m.task, async () => {
          const shard = runner()?.takePartial(m.round) ?? null;
          if (!shard) return this.publishNow({ t: 'partial', task: m.task, round: m.round, has: false, bytes: 0 });
          const buf = encodePartial({ sum: shard.partial.sum, meta: { ...shard.partial.meta, devices: shard.devices } });
          await this.link.cmd.set(`fl:partial:${m.task}:${m.round}:${this.nodeId}`, buf, { PX: 120_000 });
          this.stats.partialsSent++;
          this.stats.partialBytesSent += buf.length;
          await this.publishNow({ t: 'partial', task: m.task, round: m.round, has: true, bytes: buf.length });
        });
      case 'end':
        return this.chain(m.task, async () => {
          const r = runner();
          r?.endFollowing(m.round);
          // A commit moved the task on: re-read it (version, weights, strategy state) from the store.
          if (m.state !== 'done' || this.leads(m.task)) return;
          const task = await this.store.getTask(m.task);
          if (!task) return;
          if (r) r.adopt(task, await this.coordinator.weightsOf(task));
          else await this.coordinator.load(m.task, 'keep');
        });
      case 'task':
        return this.chain(m.task, async () => {
          const task = await this.store.getTask(m.task);
          if (!task) return;
          const r = runner();
          if (!r) await this.coordinator.load(m.task, 'keep');
          else r.refresh(task);
        });
    }
  }

  // ---- leadership and liveness ----

  /**
   * One lease/heartbeat step. A Redis command caught by a connection loss may never settle, so a
   * step that takes longer than a lease is abandoned (the next one starts afresh): a stuck command
   * must not stop this node's heartbeats for good.
   */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const abandon = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn({ node: this.nodeId }, 'cluster: lease/heartbeat step stuck for a lease period; starting afresh');
        resolve();
      }, this.leaseMs);
    });
    await Promise.race([this.step(), abandon]);
    clearTimeout(timer);
    this.ticking = false;
  }

  private async step(): Promise<void> {
    try {
      const tasks = (await this.store.listTasks()).map((t) => t.id);
      for (const id of tasks) {
        if (!this.coordinator.maybeRunner(id)) await this.coordinator.load(id, 'keep');
        await this.lead(id).catch((err) => this.logger.warn({ err: String(err), task: id }, 'cluster: lease step failed'));
      }
      await this.fleet.heartbeat(this.info(), this.localDevices(), tasks);
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'cluster: heartbeat failed (redis or store unreachable)');
    }
  }

  private async lead(taskId: string): Promise<void> {
    if (this.leases.held(taskId)) {
      if (!(await this.leases.renew(taskId))) this.stepDown(taskId, 'lease lost');
      return;
    }
    if (this.leases.tasks().includes(taskId)) return this.stepDown(taskId, 'lease lapsed');
    const token = await this.leases.tryAcquire(taskId);
    if (token !== null) await this.takeOver(taskId, token);
  }

  /** This node now holds the task's lease: claim the fence, restore the task from the store, go on. */
  private async takeOver(taskId: string, token: number): Promise<void> {
    try {
      await this.store.claimFence(taskId, token);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'FL_ERR_CLUSTER_STALE_LEADER') throw err;
      const current = Number((err.details as { current?: number } | undefined)?.current ?? 0);
      await this.store.claimFence(taskId, await this.leases.reissue(taskId, current));
    }
    this.stats.takeovers++;
    this.logger.info({ task: taskId, node: this.nodeId, fence: this.fence(taskId) }, 'cluster: leading task');
    this.chain(taskId, async () => {
      const r = await this.coordinator.load(taskId, 'fail-in-flight', 'leader changed mid-round');
      r?.poke();
    });
  }

  private stepDown(taskId: string, why: string): void {
    this.leases.drop(taskId);
    this.stats.stepDowns++;
    this.logger.warn({ task: taskId, node: this.nodeId, why }, 'cluster: no longer leading task');
    this.chain(taskId, async () => {
      await this.coordinator.load(taskId, 'keep');
    });
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
    if (this.timer) clearInterval(this.timer);
    await this.leases.releaseAll().catch(() => undefined);
    await this.fleet.forgetSelf(this.localDevices()).catch(() => undefined);
    await this.link.close();
  }
}
