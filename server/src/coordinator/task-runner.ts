import type { EvalReport, FitReport, TaskPlan } from '@flotilla/protocol';
import type { SecAggMasked, SecAggUp } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { AggregatorPartial } from '../fl/strategy.js';
import { createStrategy } from '../fl/strategies/index.js';
import type { RoundRecord, TaskRecord } from '../store/records.js';
import type { ActiveRound } from './active-round.js';
import { takeMasked } from './secagg/secagg-hook.js';
import { committedStrategy, RoundLoop } from './round-loop.js';
import { ReportTokens, type ReportClaims } from './report-tokens.js';

/**
 * One task's runner: its round loop (round-loop.ts) plus everything that reaches it from outside.
 * Concepts here: the task's control (plan updates, pause/stop, another node's change to the
 * record), report intake (upload slots, fit reports, drops, secure-aggregation messages,
 * evaluation reports: each checked against the round in flight, with the coded reason when it
 * cannot be taken), and, in cluster mode, the follower's side of a round led elsewhere (a shard
 * of this node's reports, handed over as a partial at close). The gateway, the coordinator and
 * cluster/ call these; the round's own steps stay in RoundLoop.
 */
export class TaskRunner extends RoundLoop {
  /** Cluster: another node changed the task in the store; take its record (plan, state) as is. */
  refresh(task: TaskRecord): void {
    if (JSON.stringify(task.plan) !== JSON.stringify(this.task.plan)) this.nextStrategy = createStrategy(task.plan);
    this.task = { ...task, currentVersion: this.task.currentVersion, nextRound: Math.max(task.nextRound, this.task.nextRound) };
    if (task.state !== 'running' && this.active?.state === 'training' && !this.following) void this.fail(`task ${task.state}`);
    this.poke();
  }

  /** Replace the plan (already validated); the round in flight keeps the plan it started with. */
  async updatePlan(plan: TaskPlan): Promise<void> {
    const next = createStrategy(plan); // the strategy validates its params against the new plan
    this.task = await this.deps.store.updateTask(this.task.id, { plan });
    this.nextStrategy = next;
    this.deps.events.emit('task', this.task);
    this.poke();
  }

  /** Pause/stop: the round in flight (if any) fails; the global model is unchanged. */
  async halt(state: 'paused' | 'stopped' | 'done', reason: string): Promise<void> {
    if (this.active && this.active.state === 'training' && !this.following) await this.fail(reason);
    await this.setState(state, reason);
  }

  /** The round a report or upload request names, or the coded reason it cannot be taken. */
  private roundFor(round: number): ActiveRound {
    const a = this.active;
    // A report for a round that is over is late, whatever the task does now (done, paused...).
    if (round < (a?.round ?? this.task.nextRound)) throw new AppError('FL_ERR_ROUND_LATE_REPORT', { round, current: a?.round ?? null });
    if (this.task.state !== 'running') throw new AppError('FL_ERR_TASK_NOT_RUNNING', { task: this.task.id });
    if (!a || round !== a.round) {
      if (round < (a?.round ?? this.task.nextRound)) throw new AppError('FL_ERR_ROUND_LATE_REPORT', { round, current: a?.round ?? null });
      throw new AppError('FL_ERR_ROUND_WRONG_ROUND', { round, current: a?.round ?? null });
    }
    return a;
  }

  /** Resolves when the device may upload its report (an upload slot is its own); throws the code a report would get. */
  async onFitReady(deviceId: string, round: number, bytes: number): Promise<void> {
    await this.clusterReady();
    const a = this.roundFor(round);
    a.admit(deviceId, bytes);
    await a.gate.acquire(deviceId);
  }

  /**
   * An HTTP report upload presenting `token` (claims `c`) wants to send `declared` bytes (0 when
   * unknown): resolves with the round once the device holds an upload slot, as an ok `fit:ready`
   * would. Throws the round's codes (late, wrong round), FL_ERR_REPORT_TOKEN_INVALID for a token
   * this round did not issue, FL_ERR_REPORT_TOKEN_USED the second time, and what `admit` throws.
   * The token is used up by this call whatever follows.
   */
  async openUpload(token: string, c: ReportClaims, declared: number): Promise<ActiveRound> {
    await this.clusterReady();
    const a = this.roundFor(c.r);
    if (!a.uploads) throw new AppError('FL_ERR_REPORT_TOKEN_INVALID', { why: 'this round takes no uploads' });
    a.uploads.check(token);
    if (c.v !== a.record.baseVersion) throw new AppError('FL_ERR_REPORT_TOKEN_INVALID', { why: 'base version' });
    a.uploads.use(token);
    a.admit(c.d, declared);
    await a.gate.acquire(c.d);
    return a;
  }

  /**
   * A fit report from a device. It must hold the upload slot its `fit:ready` was granted
   * (FL_ERR_PROTO_UPLOAD_NOT_GRANTED otherwise); the slot is released whatever the outcome.
   * Throws AppError with the rejection code; on success the report is folded in. A rejected
   * report does not use up the device's place: it may ask again (`fit:ready`) and resend until the
   * round closes (docs/api.md, "Device connection"). Cluster: the report is claimed cluster-wide
   * first (one per device and round; a refused report gives its claim back), folded into this
   * node's shard, and a follower tells the leader it was counted.
   */
  async onReport(deviceId: string, r: FitReport): Promise<void> {
    await this.clusterReady();
    const a = this.roundFor(r.round);
    const cluster = this.deps.cluster;
    if (cluster && !(await cluster.claimReport(this.task.id, r.round, deviceId))) {
      a.gate.release(deviceId);
      a.reject(deviceId, 'FL_ERR_ROUND_DUPLICATE_REPORT', { round: r.round });
    }
    try {
      if (a.secagg) throw new AppError('FL_ERR_SECAGG_PLAIN_REPORT', { round: r.round });
      a.accept(deviceId, r, a.gate.holds(deviceId));
    } catch (err) {
      if (cluster) void cluster.releaseReport(this.task.id, r.round, deviceId).catch(() => undefined);
      throw err;
    } finally {
      a.gate.release(deviceId);
    }
    if (this.following) return cluster!.reported(this.task.id, r.round, deviceId, r.delta.byteLength);
    await this.counted(a);
  }

  /** Cluster leader: a follower folded a report of one of its devices into its shard. */
  async onRemoteReport(deviceId: string, round: number, bytes: number): Promise<void> {
    const a = this.active;
    if (this.following || !a || a.round !== round || a.state !== 'training') return;
    if (a.countRemote(deviceId, bytes)) await this.counted(a);
  }

  /** Cluster follower: the leader's latest round may still be on its way to this node; wait for it. */
  private async clusterReady(): Promise<void> {
    const c = this.deps.cluster;
    if (c && !c.leads(this.task.id)) await c.ready(this.task.id);
  }

  /**
   * A selected device failed (fit:failure: dropped at once) or lost its connection (dropped only
   * if it has not said hello again within the reconnect grace, so a device whose network blinks
   * mid-round can still report before the deadline).
   */
  onDeviceGone(deviceId: string, reason: string, grace = false): void {
    const a = this.active;
    if (!a) return;
    a.gate.release(deviceId);
    if (this.following) return this.deps.cluster!.deviceGone(this.task.id, deviceId, reason, grace);
    if (a.state !== 'training') return;
    if (grace) a.disconnected.add(deviceId);
    const drop = () => {
      if (a.secagg) {
        if (this.active === a && (!grace || !this.deps.devices.connected(deviceId)) && a.drop(deviceId, reason)) a.secagg.gone(deviceId);
        return;
      }
      // After the grace, only a device that has not come back (to any node) counts as dropped; a reported failure drops at once.
      if (this.active === a && a.state === 'training' && (!grace || !this.deps.devices.connected(deviceId)) && a.drop(deviceId, reason) && a.settled) void this.settle(a);
    };
    if (!grace || this.deps.reconnectGraceMs <= 0) return drop();
    const t = setTimeout(drop, this.deps.reconnectGraceMs);
    t.unref?.();
  }

  /** A secure-aggregation message (keys, shares, unmasking shares) from a device. */
  async onSecAgg(deviceId: string, m: SecAggUp): Promise<void> {
    const a = this.roundFor(m.round);
    if (!a.secagg) throw new AppError('FL_ERR_SECAGG_WRONG_PHASE', { why: 'this task does not use secure aggregation' });
    await a.secagg.receive(deviceId, m.phase, m.data);
  }

  /** A masked input, after an ok fit:ready. */
  onMasked(deviceId: string, m: SecAggMasked): void {
    takeMasked(this.roundFor(m.round), deviceId, m);
  }

  /** Largest `secagg` message a device of this task may send now. */
  get secAggMessageBytes(): number {
    return this.active?.secagg?.maxMessageBytes ?? 0;
  }

  /** Give back the upload slot a device holds without reporting (its report was refused before it reached the round). */
  releaseUpload(deviceId: string): void {
    this.active?.gate.release(deviceId);
  }

  /** An evaluation report from a device (see FederatedEvaluation); a follower hands it to the leader. */
  onEvalReport(deviceId: string, r: EvalReport): void {
    if (this.deps.cluster && !this.deps.cluster.leads(this.task.id)) return this.deps.cluster.evalReported(this.task.id, deviceId, r);
    this.evaluation.onReport(deviceId, r);
  }

  /**
   * Cluster follower: take reports for the leader's round `record` (opened with `plan`) into a
   * shard of this node, folded with the strategy as of the task's last commit (`task`, re-read
   * from the store). No timers: the leader closes the round.
   */
  follow(task: TaskRecord, weights: Float32Array, record: RoundRecord, plan: TaskPlan, uploadKey?: string): void {
    if (this.active) this.clearTimer(this.active);
    this.task = task;
    this.weights = weights;
    this.strategy = committedStrategy(task);
    this.active = this.openRound({ ...record, reported: [], rejected: [], dropped: [] }, plan, null);
    if (uploadKey) this.active.uploads = new ReportTokens(Buffer.from(uploadKey, 'base64'));
    this.following = true;
  }

  /** Cluster follower: the leader committed; take the task's new record and weights in place (reports in flight keep this runner). */
  adopt(task: TaskRecord, weights: Float32Array): void {
    if (this.deps.cluster?.leads(this.task.id)) return;
    this.task = task;
    this.weights = weights;
    this.strategy = committedStrategy(task);
    this.nextStrategy = null;
  }

  /** Cluster follower: the leader closes `round`: hand over this node's shard (null when it has none). */
  takePartial(round: number): { partial: AggregatorPartial; devices: string[] } | null {
    const a = this.active;
    if (!this.following || !a || a.round !== round || a.state !== 'training') return null;
    this.clearTimer(a);
    a.transition('aggregating'); // later reports for this round are late
    if (a.reported.size === 0) return null;
    return { partial: a.aggregator.exportPartial!(), devices: [...a.reported] };
  }

  /** Cluster follower: the leader ended `round` (or any older one): drop the shard. */
  endFollowing(round: number): void {
    const a = this.active;
    if (!this.following || !a || a.round > round) return;
    this.clearTimer(a);
    this.active = null;
  }
}
