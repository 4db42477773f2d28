import type { TaskPlan } from '@flotilla/protocol';
import type { AggregatorPartial } from '../fl/strategy.js';
import type { RoundRecord } from '../store/records.js';

/**
 * What a task runner asks of the cluster (docs/cluster.md), when the coordinator runs as one node
 * of several; absent on a single node. The runner stays the round state machine; this interface
 * carries leadership and the round's cross-node steps, implemented over Redis by
 * cluster/cluster-node.ts.
 *
 * Contracts:
 *  - `leads(task)` is true only while this node holds the task's lease (checked against the local
 *    clock, so a process paused past its lease answers false when it wakes) and has restored the
 *    task from the store since taking it (no round opens on the runner the restore replaces);
 *  - `fence(task)` is the token the leader commits with; the store refuses it once a newer leader
 *    claimed the task;
 *  - `claimReport` succeeds once per (task, round, device) across the cluster;
 *  - `gatherPartials` resolves with every other node's partial for the round (their devices'
 *    reports folded), or rejects when a node that took reports does not deliver in time.
 */
export interface RoundCluster {
  readonly nodeId: string;
  leads(taskId: string): boolean;
  fence(taskId: string): number | undefined;
  /** The leader opened a round: followers start taking its reports (and its HTTP uploads, with `uploadKey`: report-tokens.ts). */
  roundOpened(record: RoundRecord, plan: TaskPlan, uploadKey?: string): Promise<void>;
  claimReport(taskId: string, round: number, deviceId: string): Promise<boolean>;
  releaseReport(taskId: string, round: number, deviceId: string): Promise<void>;
  /** A follower folded a report of its device: the leader counts it. */
  reported(taskId: string, round: number, deviceId: string, bytes: number): void;
  /** A follower's selected device failed or left: the leader decides whether it dropped. */
  deviceGone(taskId: string, deviceId: string, reason: string, grace: boolean): void;
  gatherPartials(taskId: string, round: number): Promise<AggregatorPartial[]>;
  /** The round is over (committed or failed): followers drop what they folded. */
  roundEnded(taskId: string, round: number, state: 'done' | 'failed', reason?: string): void;
  /** Resolves once this node has applied the leader's messages received so far for the task. */
  ready(taskId: string): Promise<void>;
  /** A follower's device sent an evaluation report: the leader aggregates it. */
  evalReported(taskId: string, deviceId: string, report: unknown): void;
}
