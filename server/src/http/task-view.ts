import { stalenessHistogram } from '../fl/async/staleness.js';
import type { ClientRecord, RoundRecord, TaskRecord } from '../store/records.js';
import type { DeviceSession } from '../coordinator/sessions.js';

/** Public JSON view of a task: everything but the model topology (served by the registry). */
export function taskView(t: TaskRecord, connectedDevices: number) {
  return {
    id: t.id,
    modelName: t.modelName,
    state: t.state,
    stateReason: t.stateReason ?? null,
    plan: t.plan,
    currentVersion: t.currentVersion,
    nextRound: t.nextRound,
    parameters: t.spec.manifest.reduce((n, w) => n + w.size, 0),
    inputShape: t.spec.inputShape,
    numClasses: t.spec.numClasses,
    connectedDevices,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}

/** Async model steps (docs/async.md): how stale the step's reports were; null for sync rounds. */
function stalenessView(r: RoundRecord) {
  const histogram = stalenessHistogram(r.trainMetrics);
  return histogram ? { histogram, mean: r.trainMetrics.stalenessMean ?? null, max: r.trainMetrics.stalenessMax ?? null } : null;
}

const durationMs = (r: RoundRecord) => (r.endedAt !== undefined ? r.endedAt - r.startedAt : null);

/** One line of a round listing: counts, not id lists. */
export function roundSummary(r: RoundRecord) {
  return {
    round: r.round,
    state: r.state,
    baseVersion: r.baseVersion,
    committedVersion: r.committedVersion ?? null,
    selected: r.selected.length,
    reported: r.reported.length,
    rejected: r.rejected.length,
    dropped: r.dropped.length,
    startedAt: r.startedAt,
    endedAt: r.endedAt ?? null,
    durationMs: durationMs(r),
    failureReason: r.failureReason ?? null,
    bytesUp: r.bytesUp,
    bytesDown: r.bytesDown,
    trainMetrics: r.trainMetrics,
    centralMetrics: r.centralMetrics,
    staleness: stalenessView(r),
    secureAggregation: r.secureAggregation ? r.secureAggregation.outcome : null,
  };
}

/** A round in full: who was selected, reported, rejected (with codes) and dropped; timing and metrics. */
export function roundDetail(r: RoundRecord) {
  const rejectedByCode: Record<string, number> = {};
  for (const x of r.rejected) rejectedByCode[x.code] = (rejectedByCode[x.code] ?? 0) + 1;
  return {
    taskId: r.taskId,
    round: r.round,
    state: r.state,
    baseVersion: r.baseVersion,
    committedVersion: r.committedVersion ?? null,
    selected: r.selected,
    reported: r.reported,
    rejected: r.rejected,
    rejectedByCode,
    dropped: r.dropped,
    startedAt: r.startedAt,
    deadline: r.deadline,
    endedAt: r.endedAt ?? null,
    durationMs: durationMs(r),
    aggregationMs: r.aggregationMs ?? null,
    failureReason: r.failureReason ?? null,
    trainMetrics: r.trainMetrics,
    evalMetrics: r.evalMetrics,
    centralMetrics: r.centralMetrics,
    bytesUp: r.bytesUp,
    bytesDown: r.bytesDown,
    staleness: stalenessView(r),
    /** Secure aggregation: phases, dropouts by phase, unmask outcome (null for plain rounds). */
    secureAggregation: r.secureAggregation ?? null,
  };
}

export type ClientState = 'connected' | 'disconnected' | 'revoked';

export function clientState(c: ClientRecord, session: DeviceSession | undefined): ClientState {
  if (c.revoked) return 'revoked';
  return session && session.socket.connected ? 'connected' : 'disconnected';
}

export function sessionView(s: DeviceSession) {
  return { sessionId: s.sessionId, taskId: s.taskId, connectedAt: s.connectedAt, lastSeen: s.lastSeen, backend: s.backend ?? null, tokenId: s.tokenId ?? null };
}

export function clientView(c: ClientRecord, session: DeviceSession | undefined) {
  return { ...c, state: clientState(c, session), session: session && session.socket.connected ? sessionView(session) : null };
}
