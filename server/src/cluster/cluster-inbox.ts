import { TaskPlanSchema, type EvalReport } from '@flotilla/protocol';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { CoordinatorLogger } from '../coordinator/deps.js';
import { TaskRunner } from '../coordinator/task-runner.js';
import type { Runner } from '../coordinator/async/runner-for.js';
import type { RoundRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { Fleet } from './fleet.js';
import type { LeaseTable } from './leader-lease.js';
import type { LeadershipLoop } from './leadership-loop.js';
import { ClusterMessageSchema, type ClusterMessage } from './messages.js';
import type { PartialExchange } from './partial-exchange.js';
import type { TaskQueue } from './task-queue.js';

function roundRunnerOf(r: Runner | undefined): TaskRunner | undefined {
  return r instanceof TaskRunner ? r : undefined;
}

export interface InboxDeps {
  nodeId: string;
  fleet: Fleet;
  leases: LeaseTable;
  leadership: LeadershipLoop;
  partials: PartialExchange;
  queue: TaskQueue;
  store: Store;
  coordinator: Coordinator;
  logger: CoordinatorLogger;
  /** Another node changed versions, aliases or deployments. */
  servingChanged(): void;
}

/**
 * What a node does with each message on `fl:cluster` (docs/cluster.md, "Round steps across
 * nodes"). Every message is parsed once here (a malformed one is logged and dropped). As leader
 * of a task: count followers' reports, drops and evaluation reports, poke the runner when a device
 * joins anywhere. As follower: take the leader's round (`open`), hand over the shard at `close`,
 * drop it and re-read the task from the store at `end`, re-read the record at `task`. Fleet
 * mirror updates (`join`, `leave`) apply on every node. Contract: a node ignores its own messages
 * except `partial` (the leader gathers its own shard too) and `serving`; runner changes go
 * through the task's queue, in arrival order.
 */
export class ClusterInbox {
  constructor(private readonly d: InboxDeps) {}

  receive(raw: string): void {
    let m: ClusterMessage;
    try {
      m = ClusterMessageSchema.parse(JSON.parse(raw));
    } catch (err) {
      this.d.logger.warn({ err: String(err) }, 'cluster: malformed message dropped');
      return;
    }
    if (m.t === 'serving') {
      if (m.from !== this.d.nodeId) this.d.servingChanged();
      return;
    }
    if (m.t === 'partial') return this.d.partials.received(m);
    if (m.from === this.d.nodeId) return;
    this.apply(m);
  }

  private leads(taskId: string): boolean {
    return this.d.leases.held(taskId);
  }

  private apply(m: Exclude<ClusterMessage, { t: 'serving' | 'partial' }>): void {
    const { fleet, queue, store, coordinator } = this.d;
    // Cluster mode refuses async plans (checkClusterPlan), so every runner here runs rounds.
    const runner = () => roundRunnerOf(coordinator.maybeRunner(m.task));
    switch (m.t) {
      case 'join':
        fleet.apply(m.task, m.device, m.from);
        if (this.leads(m.task)) runner()?.poke();
        return;
      case 'leave':
        if (fleet.nodeOf(m.device) === m.from) fleet.apply(m.task, m.device, null);
        return;
      case 'reported':
        if (!this.leads(m.task)) return;
        this.d.partials.reporter(m.task, m.from);
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
        const { leases } = this.d;
        if (leases.tasks().includes(m.task) && m.fence > (leases.token(m.task) ?? 0)) this.d.leadership.stepDown(m.task, 'a newer leader opened a round');
        const record = m.record as unknown as RoundRecord;
        const plan = TaskPlanSchema.parse(m.plan);
        return queue.run(m.task, async () => {
          const task = await store.getTask(m.task);
          const r = runner() ?? roundRunnerOf(await coordinator.load(m.task, 'keep'));
          if (!task || !r || this.leads(m.task)) return;
          r.follow(task, r.globalWeights, record, plan, m.uploadKey);
        });
      }
      case 'close':
        return queue.run(m.task, () => this.d.partials.answer(m.task, m.round, runner()?.takePartial(m.round) ?? null));
      case 'end':
        return queue.run(m.task, async () => {
          const r = runner();
          r?.endFollowing(m.round);
          // A commit moved the task on: re-read it (version, weights, strategy state) from the store.
          if (m.state !== 'done' || this.leads(m.task)) return;
          const task = await store.getTask(m.task);
          if (!task) return;
          if (r) r.adopt(task, await coordinator.weightsOf(task));
          else await coordinator.load(m.task, 'keep');
        });
      case 'task':
        return queue.run(m.task, async () => {
          const task = await store.getTask(m.task);
          if (!task) return;
          const r = runner();
          if (!r) await coordinator.load(m.task, 'keep');
          else r.refresh(task);
        });
    }
  }
}
