import type {
  ArtifactRef,
  AliasAction,
  AliasHistoryRecord,
  AliasRecord,
  ClientRecord,
  DeploymentRecord,
  InputStatsRecord,
  ModelRecord,
  PayloadRecord,
  RoundRecord,
  TaskRecord,
  TokenRecord,
  VersionRecord,
} from './records.js';

/**
 * The one persistence interface. Implementations (memory, sqlite, mongodb) pass the shared
 * contract suite in test/store. Contracts:
 *  - every method returns copies: mutating a returned record never changes stored state;
 *  - `commitRound` is atomic: the version, the round record, the task's currentVersion/nextRound
 *    and the `latest` alias change together or not at all; a version number that exists already
 *    fails with FL_ERR_VERSION_IMMUTABLE and changes nothing;
 *  - versions are immutable once written; only `archived` may change (and metrics may gain new keys);
 *  - `putVersion` (a publish outside any round) creates the model when needed, inserts the version
 *    and moves `latest` to it atomically; an existing version number fails with
 *    FL_ERR_VERSION_IMMUTABLE and changes nothing;
 *  - every alias change appends one history record (newest first on read; ties in write order).
 *  - artifact bytes live in a BlobStore and are written before the version that names them;
 *  - fencing (cluster mode, docs/cluster.md): each task keeps the highest leader token seen.
 *    `claimFence` raises it (a lower token fails with FL_ERR_CLUSTER_STALE_LEADER and changes
 *    nothing); a `commitRound` whose `fence` is below it fails the same way, checked inside the
 *    commit's own transaction, so a paused or partitioned ex-leader can never commit.
 */
export interface PageOptions {
  limit?: number;
  offset?: number;
}

export interface VersionQuery extends PageOptions {
  tag?: string;
  alias?: string;
  includeArchived?: boolean;
}

export interface PayloadQuery extends PageOptions {
  version?: number;
}

export interface CommitInput {
  /**
   * What the round moved on: version, round counter, strategy and screening state. Not the task's
   * state (running, paused...): that belongs to the operator, and in a cluster another node may
   * have changed it after the committing leader read its record; a commit never writes it back.
   */
  task: Pick<TaskRecord, 'id' | 'currentVersion' | 'nextRound' | 'strategyState' | 'screeningState'>;
  round: RoundRecord;
  version: VersionRecord;
  /** Who moved `latest` (for alias history). */
  by: string;
  /** The committing leader's fencing token (cluster mode); absent: no fencing check. */
  fence?: number;
}

/**
 * The task fields a commit writes, and only those (CommitInput.task): whatever else the caller's
 * object carries (a record's `state`, say) is left out, so every store keeps the same contract.
 */
export function commitTaskPatch(task: CommitInput['task']): Omit<CommitInput['task'], 'id'> {
  const out: Omit<CommitInput['task'], 'id'> = { currentVersion: task.currentVersion, nextRound: task.nextRound };
  // Present but undefined clears the stored value (the strategy keeps no state now); absent keeps it.
  if ('strategyState' in task) out.strategyState = task.strategyState;
  if ('screeningState' in task) out.screeningState = task.screeningState;
  return out;
}

export interface Store {
  readonly kind: string;
  init(): Promise<void>;
  close(): Promise<void>;
  /** Cheap reachability check for /readyz. */
  ping(): Promise<boolean>;

  createTask(task: TaskRecord, initialVersion: VersionRecord): Promise<void>;
  getTask(id: string): Promise<TaskRecord | null>;
  listTasks(): Promise<TaskRecord[]>;
  updateTask(id: string, patch: Partial<Omit<TaskRecord, 'id' | 'createdAt'>>): Promise<TaskRecord>;

  /** Insert or replace the record of a round not yet committed. */
  saveRound(round: RoundRecord): Promise<void>;
  getRound(taskId: string, round: number): Promise<RoundRecord | null>;
  /** Newest first. */
  listRounds(taskId: string, page?: PageOptions): Promise<RoundRecord[]>;
  commitRound(input: CommitInput): Promise<void>;
  /** Raise the task's fencing token to `token` (see the contract above). */
  claimFence(taskId: string, token: number): Promise<void>;

  listModels(): Promise<ModelRecord[]>;
  getModel(name: string): Promise<ModelRecord | null>;
  getVersion(model: string, version: number): Promise<VersionRecord | null>;
  /** Newest first. */
  listVersions(model: string, query?: VersionQuery): Promise<VersionRecord[]>;
  /** Publish a version outside a round (see the contract above). */
  putVersion(version: VersionRecord, by: string): Promise<void>;
  setArchived(model: string, version: number, archived: boolean): Promise<void>;
  /** Merge metrics into a version record under keys that do not exist yet (later evaluations); existing keys never change. */
  addVersionMetrics(model: string, version: number, metrics: Record<string, number>): Promise<void>;
  /**
   * Add artifacts to a version (a variant made later, e.g. a distilled student), all or none:
   * a name the version already has answers FL_ERR_VERSION_IMMUTABLE and nothing changes.
   */
  addVersionArtifacts(model: string, version: number, artifacts: ArtifactRef[]): Promise<void>;

  getAlias(model: string, alias: string): Promise<AliasRecord | null>;
  listAliases(model: string): Promise<AliasRecord[]>;
  /** Fails with FL_ERR_VERSION_NOT_FOUND when the version does not exist. `action` defaults to 'set'. */
  setAlias(model: string, alias: string, version: number, by: string, action?: Exclude<AliasAction, 'delete'>): Promise<AliasRecord>;
  deleteAlias(model: string, alias: string, by: string): Promise<void>;
  /** Newest first. */
  aliasHistory(model: string, alias?: string): Promise<AliasHistoryRecord[]>;

  upsertClient(client: ClientRecord): Promise<void>;
  /** Upsert many client records in one write (one transaction where the store has them). */
  upsertClients(clients: readonly ClientRecord[]): Promise<void>;
  getClient(id: string): Promise<ClientRecord | null>;
  listClients(taskId?: string): Promise<ClientRecord[]>;
  /** Client records bound to the token `tokenId` (null: the bootstrap device token), revoked ones included. */
  countClientsByToken(tokenId: string | null): Promise<number>;
  /** Delete the records of clients last seen before `cutoff` (epoch ms), except revoked ones; returns their ids. */
  deleteClientsSeenBefore(cutoff: number): Promise<string[]>;

  /** Insert a token; an existing id fails with FL_ERR_STORE_CONFLICT and changes nothing. */
  putToken(token: TokenRecord): Promise<void>;
  getToken(id: string): Promise<TokenRecord | null>;
  /** Newest first (ties by id). */
  listTokens(): Promise<TokenRecord[]>;
  /** Mark revoked (idempotent: a second call keeps the first revokedAt). Returns the record, or null when absent. */
  revokeToken(id: string, at: number): Promise<TokenRecord | null>;

  // ---- serving ----
  /** Insert a deployment; an existing name fails with FL_ERR_DEPLOYMENT_EXISTS and changes nothing. */
  createDeployment(d: DeploymentRecord): Promise<void>;
  getDeployment(name: string): Promise<DeploymentRecord | null>;
  /** By name. */
  listDeployments(): Promise<DeploymentRecord[]>;
  /** Merge a patch (keys given as undefined are removed), bump updatedAt; FL_ERR_DEPLOYMENT_NOT_FOUND when absent. */
  updateDeployment(name: string, patch: Partial<Omit<DeploymentRecord, 'name' | 'createdAt'>>): Promise<DeploymentRecord>;
  /** FL_ERR_DEPLOYMENT_NOT_FOUND when absent. */
  deleteDeployment(name: string): Promise<void>;
  /**
   * Append sampled payloads, then keep only the `capPerModel` newest of each model touched
   * (newest: latest `at`, ties in write order).
   */
  appendPayloads(records: PayloadRecord[], capPerModel: number): Promise<void>;
  /** Newest first (ties: later writes first); `version` filters. */
  listPayloads(model: string, query?: PayloadQuery): Promise<PayloadRecord[]>;
  countPayloads(model: string, version?: number): Promise<number>;
  /** Insert or replace the drift reference of a version. */
  putInputStats(stats: InputStatsRecord): Promise<void>;
  getInputStats(model: string, version: number): Promise<InputStatsRecord | null>;
}
