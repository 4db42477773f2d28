import type { RoundRecord, TaskRecord, VersionRecord } from '../store/records.js';
import type { ActiveRound } from './active-round.js';
import type { CoordinatorDeps } from './deps.js';

/**
 * What a round writes to the store (docs/architecture.md, "Life of a round"): the record saved
 * when it opens (selection, deadline; its number already reserved in the task), and the commit of
 * an aggregated round: the next version of the task's model with its lineage and headline
 * metrics, the round's final record and the task's new state, handed to `Registry.commitRound` as
 * one request (blobs first, then one store transaction). Contract: nothing in memory is changed
 * here; the caller adopts `committed` and the weights only after `commitRound` resolves, so a
 * refused commit (a stale leader's fence, a store error) leaves the runner as it was.
 */
export function newRoundRecord(task: TaskRecord, round: number, selected: string[], now: number): RoundRecord {
  return {
    taskId: task.id,
    round,
    state: 'selecting',
    baseVersion: task.currentVersion,
    selected,
    reported: [],
    rejected: [],
    dropped: [],
    startedAt: now,
    deadline: now + task.plan.roundDeadlineMs,
    trainMetrics: {},
    evalMetrics: {},
    centralMetrics: {},
    bytesUp: 0,
    bytesDown: 0,
  };
}

export interface RoundCommit {
  task: TaskRecord;
  round: ActiveRound;
  /** The full weights of the new version (trainable part stepped, frozen part as before). */
  weights: Float32Array;
  aggregationMs: number;
  strategyState: TaskRecord['strategyState'];
  screeningState: TaskRecord['screeningState'];
  /** Cluster: the fencing token the round ran under (a newer leader's claim refuses it). */
  fence: number | undefined;
}

export async function commitRound(deps: CoordinatorDeps, c: RoundCommit): Promise<{ version: VersionRecord; committed: RoundRecord }> {
  const { task, round: a } = c;
  const version = task.currentVersion + 1;
  const now = Date.now();
  const committed: RoundRecord = { ...a.record, state: 'done', committedVersion: version, endedAt: now, aggregationMs: c.aggregationMs };
  const metrics: Record<string, number> = { participants: a.reported.size };
  if (committed.trainMetrics.loss !== undefined) metrics.trainLoss = committed.trainMetrics.loss;
  if (committed.centralMetrics.accuracy !== undefined) metrics.accuracy = committed.centralMetrics.accuracy;
  if (committed.centralMetrics.loss !== undefined) metrics.loss = committed.centralMetrics.loss;
  const v = await deps.registry.commitRound({
    task: { id: task.id, currentVersion: version, nextRound: task.nextRound, strategyState: c.strategyState, screeningState: c.screeningState },
    round: committed,
    version: {
      model: task.modelName,
      version,
      createdAt: now,
      spec: task.spec,
      weights: c.weights,
      taskId: task.id,
      round: a.round,
      parentVersion: task.currentVersion,
      metrics,
    },
    by: deps.cluster ? `coordinator@${deps.cluster.nodeId}` : 'coordinator',
    ...(deps.cluster ? { fence: c.fence ?? 0 } : {}),
  });
  return { version: v, committed };
}
