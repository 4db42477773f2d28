import { AppError } from '../errors.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { CoordinatorLogger } from '../coordinator/deps.js';
import type { Store } from '../store/store.js';
import type { Fleet, NodeInfo } from './fleet.js';
import type { LeaseTable } from './leader-lease.js';
import type { TaskQueue } from './task-queue.js';

export interface LeadershipDeps {
  nodeId: string;
  leaseMs: number;
  leases: LeaseTable;
  fleet: Fleet;
  store: Store;
  coordinator: Coordinator;
  logger: CoordinatorLogger;
  queue: TaskQueue;
  stats: { takeovers: number; stepDowns: number };
  /** This node's record as written at each heartbeat. */
  info(): NodeInfo;
  /** This node's connected devices, task -> device ids. */
  localDevices(): Map<string, string[]>;
}

/**
 * A node's leadership and liveness loop (docs/cluster.md, "Failover"): every lease/3 it loads the
 * tasks it does not know yet, renews the leases it holds (stepping down from one it lost), tries
 * to take the leases nobody holds, then writes its heartbeat, re-reads the fleet and pokes the
 * runners of the tasks it leads (a round may start with the devices the re-read found). Taking a
 * lease claims its fencing token in the store (lifting the token past the stored one after a
 * Redis restart) and restores the task from the store, failing the round that was in flight.
 *
 * Contracts: a step that takes longer than a lease (a Redis command caught by a connection loss
 * may never settle) is abandoned and the next starts afresh, so a stuck command never stops this
 * node's heartbeats for good; changes to a runner go through the task's queue, in order with the
 * follower's message handling.
 */
export class LeadershipLoop {
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticking = false;
  /** Tasks whose lease this node took and whose runner it has not yet restored from the store. */
  private readonly restores = new Set<string>();

  constructor(private readonly d: LeadershipDeps) {}

  start(): void {
    const every = Math.max(100, Math.floor(this.d.leaseMs / 3));
    this.timer = setInterval(() => void this.tick(), every);
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const abandon = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.d.logger.warn({ node: this.d.nodeId }, 'cluster: lease/heartbeat step stuck for a lease period; starting afresh');
        resolve();
      }, this.d.leaseMs);
    });
    await Promise.race([this.step(), abandon]);
    clearTimeout(timer);
    this.ticking = false;
  }

  private async step(): Promise<void> {
    const { coordinator, logger } = this.d;
    try {
      const tasks = (await this.d.store.listTasks()).map((t) => t.id);
      for (const id of tasks) {
        if (!coordinator.maybeRunner(id)) await coordinator.load(id, 'keep');
        await this.lead(id).catch((err) => logger.warn({ err: String(err), task: id }, 'cluster: lease step failed'));
      }
      await this.d.fleet.heartbeat(this.d.info(), this.d.localDevices(), tasks);
      // The fleet was re-read: devices it gained without a `join` message (nodes re-registering
      // theirs after a Redis restart) may now fill a round that nothing else would start.
      for (const id of tasks) if (this.d.leases.held(id)) coordinator.maybeRunner(id)?.poke();
    } catch (err) {
      logger.warn({ err: String(err) }, 'cluster: heartbeat failed (redis or store unreachable)');
    }
  }

  private async lead(taskId: string): Promise<void> {
    const { leases } = this.d;
    if (leases.held(taskId)) {
      if (!(await leases.renew(taskId))) this.stepDown(taskId, 'lease lost');
      return;
    }
    if (leases.tasks().includes(taskId)) return this.stepDown(taskId, 'lease lapsed');
    const token = await leases.tryAcquire(taskId);
    if (token !== null) await this.takeOver(taskId, token);
  }

  /** This node now holds the task's lease: claim the fence, restore the task from the store, go on. */
  private async takeOver(taskId: string, token: number): Promise<void> {
    const { store, leases } = this.d;
    try {
      await store.claimFence(taskId, token);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'FL_ERR_CLUSTER_STALE_LEADER') throw err;
      const current = Number((err.details as { current?: number } | undefined)?.current ?? 0);
      await store.claimFence(taskId, await leases.reissue(taskId, current));
    }
    this.d.stats.takeovers++;
    this.d.logger.info({ task: taskId, node: this.d.nodeId, fence: leases.token(taskId) }, 'cluster: leading task');
    // Until the restore is done this node does not lead (cluster-node.ts `leads`): a round opened
    // meanwhile by the runner being replaced would be failed by the restore as a dead leader's
    // (a task started right after a node took its lease lost its first round and stalled).
    this.restores.add(taskId);
    this.d.queue.run(taskId, async () => {
      const r = await this.d.coordinator.load(taskId, 'fail-in-flight', 'leader changed mid-round').finally(() => this.restores.delete(taskId));
      r?.poke();
    });
  }

  /** True from taking `taskId`'s lease until its runner has been restored from the store. */
  restoring(taskId: string): boolean {
    return this.restores.has(taskId);
  }

  /** Give up leading `taskId` (lease lost, or a newer leader showed itself); the runner is reloaded as a follower. */
  stepDown(taskId: string, why: string): void {
    this.d.leases.drop(taskId);
    this.d.stats.stepDowns++;
    this.d.logger.warn({ task: taskId, node: this.d.nodeId, why }, 'cluster: no longer leading task');
    this.d.queue.run(taskId, async () => {
      await this.d.coordinator.load(taskId, 'keep');
    });
  }
}
