import type {
  AliasAction,
  AliasHistoryRecord,
  AliasRecord,
  ClientRecord,
  ModelRecord,
  RoundRecord,
  TaskRecord,
  TokenRecord,
  TokenRole,
  VersionRecord,
} from './records.js';

/**
 * Row <-> record mapping of the SQLite store (sqlite-schema.ts has the tables). Contract: a
 * record written and read back is equal to the original; optional fields stored as SQL NULL come
 * back absent, never null; JSON columns hold nested values.
 */
export type Row = Record<string, unknown>;

export const json = (x: unknown): string => JSON.stringify(x);
export const parse = <T>(x: unknown): T => JSON.parse(x as string) as T;
/** Copy `value` into `out[key]` unless it is SQL NULL: optional record fields stay absent, not null. */
export function opt<T extends object, K extends keyof T>(out: T, key: K, value: unknown): void {
  if (value !== null && value !== undefined) out[key] = value as T[K];
}

export function taskFromRow(r: Row): TaskRecord {
  const t: TaskRecord = {
    id: r.id as string,
    modelName: r.model_name as string,
    spec: parse(r.spec),
    plan: parse(r.plan),
    state: r.state as TaskRecord['state'],
    currentVersion: r.current_version as number,
    nextRound: r.next_round as number,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
  if (r.strategy_state !== null) t.strategyState = parse(r.strategy_state);
  if (r.screening_state !== null) t.screeningState = parse(r.screening_state);
  opt(t, 'stateReason', r.state_reason);
  return t;
}

export function taskToRow(t: TaskRecord): Row {
  return {
    id: t.id,
    model_name: t.modelName,
    spec: json(t.spec),
    plan: json(t.plan),
    state: t.state,
    current_version: t.currentVersion,
    next_round: t.nextRound,
    strategy_state: t.strategyState === undefined ? null : json(t.strategyState),
    screening_state: t.screeningState === undefined ? null : json(t.screeningState),
    state_reason: t.stateReason ?? null,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
  };
}

export function roundFromRow(r: Row): RoundRecord {
  const x: RoundRecord = {
    taskId: r.task_id as string,
    round: r.round as number,
    state: r.state as RoundRecord['state'],
    baseVersion: r.base_version as number,
    selected: parse(r.selected),
    reported: parse(r.reported),
    rejected: parse(r.rejected),
    dropped: parse(r.dropped),
    startedAt: r.started_at as number,
    deadline: r.deadline as number,
    trainMetrics: parse(r.train_metrics),
    evalMetrics: parse(r.eval_metrics),
    centralMetrics: parse(r.central_metrics),
    bytesUp: r.bytes_up as number,
    bytesDown: r.bytes_down as number,
  };
  opt(x, 'committedVersion', r.committed_version);
  opt(x, 'endedAt', r.ended_at);
  opt(x, 'failureReason', r.failure_reason);
  opt(x, 'aggregationMs', r.aggregation_ms);
  return x;
}

export function roundToRow(r: RoundRecord): Row {
  return {
    task_id: r.taskId,
    round: r.round,
    state: r.state,
    base_version: r.baseVersion,
    committed_version: r.committedVersion ?? null,
    started_at: r.startedAt,
    ended_at: r.endedAt ?? null,
    deadline: r.deadline,
    failure_reason: r.failureReason ?? null,
    bytes_up: r.bytesUp,
    bytes_down: r.bytesDown,
    aggregation_ms: r.aggregationMs ?? null,
    selected: json(r.selected),
    reported: json(r.reported),
    rejected: json(r.rejected),
    dropped: json(r.dropped),
    train_metrics: json(r.trainMetrics),
    eval_metrics: json(r.evalMetrics),
    central_metrics: json(r.centralMetrics),
  };
}

export function versionFromRow(r: Row): VersionRecord {
  const v: VersionRecord = {
    model: r.model as string,
    version: r.version as number,
    createdAt: r.created_at as number,
    spec: parse(r.spec),
    metrics: parse(r.metrics),
    artifacts: parse(r.artifacts),
    tags: parse(r.tags),
    archived: r.archived === 1,
  };
  opt(v, 'taskId', r.task_id);
  opt(v, 'round', r.round);
  opt(v, 'parentVersion', r.parent_version);
  opt(v, 'parentModel', r.parent_model);
  opt(v, 'description', r.description);
  return v;
}

export function versionToRow(v: VersionRecord): Row {
  return {
    model: v.model,
    version: v.version,
    created_at: v.createdAt,
    task_id: v.taskId ?? null,
    round: v.round ?? null,
    parent_version: v.parentVersion ?? null,
    parent_model: v.parentModel ?? null,
    spec: json(v.spec),
    metrics: json(v.metrics),
    artifacts: json(v.artifacts),
    tags: json(v.tags),
    description: v.description ?? null,
    archived: v.archived ? 1 : 0,
  };
}

export const aliasFromRow = (r: Row): AliasRecord => ({
  model: r.model as string,
  alias: r.alias as string,
  version: r.version as number,
  updatedAt: r.updated_at as number,
  updatedBy: r.updated_by as string,
});

export const historyFromRow = (r: Row): AliasHistoryRecord => ({
  model: r.model as string,
  alias: r.alias as string,
  from: r.from_version as number | null,
  to: r.to_version as number | null,
  at: r.at as number,
  by: r.by as string,
  action: r.action as AliasAction,
});

export const clientFromRow = (r: Row): ClientRecord => ({
  id: r.id as string,
  taskId: r.task_id as string,
  firstSeen: r.first_seen as number,
  lastSeen: r.last_seen as number,
  roundsJoined: r.rounds_joined as number,
  reportsAccepted: r.reports_accepted as number,
  reportsRejected: r.reports_rejected as number,
  revoked: r.revoked === 1,
  ...(r.token_id === null || r.token_id === undefined ? {} : { tokenId: r.token_id === '' ? null : (r.token_id as string) }),
});

/** Column values of a client row, in the order of the INSERT in sqlite-store.ts. */
export const clientRow = (c: ClientRecord) =>
  [c.id, c.taskId, c.firstSeen, c.lastSeen, c.roundsJoined, c.reportsAccepted, c.reportsRejected, c.revoked ? 1 : 0, c.tokenId === undefined ? null : (c.tokenId ?? '')] as const;

export const tokenFromRow = (r: Row): TokenRecord => {
  const t: TokenRecord = {
    id: r.id as string,
    hash: r.hash as string,
    role: r.role as TokenRole,
    createdAt: r.created_at as number,
    createdBy: r.created_by as string,
    revoked: r.revoked === 1,
  };
  opt(t, 'taskId', r.task_id);
  if (r.endpoints !== null && r.endpoints !== undefined) t.endpoints = parse<string[]>(r.endpoints);
  opt(t, 'name', r.name);
  opt(t, 'expiresAt', r.expires_at);
  opt(t, 'revokedAt', r.revoked_at);
  return t;
};

export const modelFromRow = (r: Row): ModelRecord => {
  const m: ModelRecord = { name: r.name as string, createdAt: r.created_at as number };
  opt(m, 'description', r.description);
  return m;
};
