import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';
import { AppError } from '@flotilla/protocol';
import type {
  AliasAction,
  AliasHistoryRecord,
  AliasRecord,
  ClientRecord,
  ModelRecord,
  RoundRecord,
  TaskRecord,
  TokenRecord,
  VersionRecord,
} from './records.js';
import { ownerOnly, prepareDataDir, touchOwnerOnly } from './data-dir.js';
import { migrate } from './sqlite-schema.js';
import {
  type Row,
  json,
  parse,
  opt,
  taskFromRow,
  taskToRow,
  roundFromRow,
  roundToRow,
  versionFromRow,
  versionToRow,
  aliasFromRow,
  historyFromRow,
  clientFromRow,
  clientRow,
  tokenFromRow,
  modelFromRow,
} from './sqlite-rows.js';
import type { ArtifactRef, DeploymentRecord, InputStatsRecord, PayloadRecord } from './records.js';
import { commitTaskPatch, type CommitInput, type PageOptions, type PayloadQuery, type Store, type VersionQuery } from './store.js';

/** SQLITE_CONSTRAINT_PRIMARYKEY / _UNIQUE: the row exists already. */
function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export interface SqliteStoreOptions {
  /** The data dir; the database is `<dataDir>/flotilla.db`. */
  dataDir: string;
  /** Open an existing database read-only (serving replicas, docs/deploy.md): no migration, no journal change; every write fails. */
  readonly?: boolean;
}

/**
 * The embedded default Store: one SQLite file through better-sqlite3, owned by one process.
 *
 * Durability: WAL journal with `synchronous = FULL`, so a transaction that returned is on disk
 * even after a power loss, not only after a process crash (NORMAL would only survive the latter).
 * The store writes a handful of transactions per round, so the extra fsync per commit is noise,
 * and it matches the blob store, which fsyncs every artifact: a version that clients have seen
 * never disappears.
 *
 * Every multi-row change (createTask, commitRound, putVersion, alias moves) is one transaction.
 * better-sqlite3 is synchronous, so each method runs to completion without interleaving with
 * other callers of this process.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly path: string;
  private db: Database | null = null;
  private stmts = new Map<string, Statement>();

  constructor(private readonly options: SqliteStoreOptions) {
    this.path = join(options.dataDir, 'flotilla.db');
  }

  /**
   * Open (creating the data dir 0700 and the database 0600; SQLite gives -wal and -shm the
   * database's mode), check integrity, migrate. Throws FL_ERR_STORE_NOT_WRITABLE or
   * FL_ERR_STORE_CORRUPT naming the path: a database that fails `PRAGMA quick_check` (b-tree
   * structure, page and index consistency; O(database size)) is never served from.
   */
  async init(): Promise<void> {
    if (this.db) return;
    if (this.options.readonly) {
      try {
        this.db = new BetterSqlite3(this.path, { readonly: true, fileMustExist: true });
        this.db.pragma('busy_timeout = 5000');
      } catch (err) {
        throw new AppError('FL_ERR_STORE_UNAVAILABLE', { store: 'sqlite', path: this.path, why: (err as Error).message });
      }
      return;
    }
    prepareDataDir(this.options.dataDir);
    let db: Database;
    try {
      touchOwnerOnly(this.path);
      for (const f of [this.path, `${this.path}-wal`, `${this.path}-shm`]) ownerOnly(f, 0o600);
      db = new BetterSqlite3(this.path);
    } catch (err) {
      throw new AppError('FL_ERR_STORE_NOT_WRITABLE', { path: this.path, why: (err as Error).message });
    }
    try {
      // First, so that every later step waits for another process's write lock (cluster nodes
      // sharing the file) instead of failing with SQLITE_BUSY.
      db.pragma('busy_timeout = 5000');
      const problems = (db.pragma('quick_check') as Array<{ quick_check: string }>).map((r) => r.quick_check);
      if (problems.length !== 1 || problems[0] !== 'ok') throw new AppError('FL_ERR_STORE_CORRUPT', { path: this.path, problems: problems.slice(0, 10) });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db);
    } catch (err) {
      db.close();
      const code = String((err as { code?: unknown }).code ?? '');
      if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') throw new AppError('FL_ERR_STORE_CORRUPT', { path: this.path, why: (err as Error).message });
      throw err;
    }
    this.db = db;
  }

  async close(): Promise<void> {
    this.stmts.clear();
    this.db?.close();
    this.db = null;
  }

  async ping(): Promise<boolean> {
    try {
      return this.q('SELECT 1 AS ok').get() !== undefined;
    } catch {
      return false;
    }
  }

  private get conn(): Database {
    if (!this.db) throw new AppError('FL_ERR_STORE_UNAVAILABLE', { store: 'sqlite', why: 'not initialised or closed' });
    return this.db;
  }

  /** Prepared statements, cached by their SQL text. */
  private q(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.conn.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Every multi-statement write runs here, IMMEDIATE: the write lock is taken first, so
   * busy_timeout applies. A deferred transaction that reads and then writes fails at once with
   * "database is locked" (SQLITE_BUSY_SNAPSHOT, no retry) when another process sharing the file
   * (cluster nodes, docs/cluster.md) committed in between.
   */
  private tx<T>(fn: () => T): T {
    return this.conn.transaction(fn).immediate();
  }

  // ---- tasks ----

  async createTask(task: TaskRecord, initial: VersionRecord): Promise<void> {
    this.tx(() => {
      if (this.q('SELECT 1 FROM tasks WHERE id = ?').get(task.id)) throw new AppError('FL_ERR_TASK_EXISTS', { task: task.id });
      this.ensureModel(task.modelName, task.createdAt);
      this.ensureModel(initial.model, initial.createdAt);
      this.insertVersion(initial);
      this.q(
        `INSERT INTO tasks (id, model_name, spec, plan, state, current_version, next_round, strategy_state, screening_state, state_reason, created_at, updated_at)
         VALUES (@id, @model_name, @spec, @plan, @state, @current_version, @next_round, @strategy_state, @screening_state, @state_reason, @created_at, @updated_at)`,
      ).run(taskToRow(task));
      this.moveAlias(initial.model, 'latest', initial.version, 'system', initial.createdAt, 'set');
    });
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    const r = this.q('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined;
    return r ? taskFromRow(r) : null;
  }

  async listTasks(): Promise<TaskRecord[]> {
    return (this.q('SELECT * FROM tasks ORDER BY created_at, id').all() as Row[]).map(taskFromRow);
  }

  async updateTask(id: string, patch: Partial<Omit<TaskRecord, 'id' | 'createdAt'>>): Promise<TaskRecord> {
    return this.tx(() => this.patchTask(id, patch));
  }

  private patchTask(id: string, patch: Partial<TaskRecord>): TaskRecord {
    const r = this.q('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: id });
    const next: TaskRecord = { ...taskFromRow(r), ...structuredClone(patch), id, updatedAt: Date.now() };
    this.q(
      `UPDATE tasks SET model_name = @model_name, spec = @spec, plan = @plan, state = @state, current_version = @current_version,
         next_round = @next_round, strategy_state = @strategy_state, screening_state = @screening_state, state_reason = @state_reason,
         updated_at = @updated_at
       WHERE id = @id`,
    ).run(taskToRow(next));
    return next;
  }

  // ---- rounds ----

  async saveRound(round: RoundRecord): Promise<void> {
    this.upsertRound(round);
  }

  private upsertRound(round: RoundRecord): void {
    this.q(
      `INSERT OR REPLACE INTO rounds (task_id, round, state, base_version, committed_version, started_at, ended_at, deadline, failure_reason,
         bytes_up, bytes_down, aggregation_ms, selected, reported, rejected, dropped, train_metrics, eval_metrics, central_metrics, secure_aggregation)
       VALUES (@task_id, @round, @state, @base_version, @committed_version, @started_at, @ended_at, @deadline, @failure_reason,
         @bytes_up, @bytes_down, @aggregation_ms, @selected, @reported, @rejected, @dropped, @train_metrics, @eval_metrics, @central_metrics, @secure_aggregation)`,
    ).run(roundToRow(round));
  }

  async getRound(taskId: string, round: number): Promise<RoundRecord | null> {
    const r = this.q('SELECT * FROM rounds WHERE task_id = ? AND round = ?').get(taskId, round) as Row | undefined;
    return r ? roundFromRow(r) : null;
  }

  async listRounds(taskId: string, page?: PageOptions): Promise<RoundRecord[]> {
    const rows = this.q('SELECT * FROM rounds WHERE task_id = ? ORDER BY round DESC LIMIT ? OFFSET ?').all(
      taskId,
      page?.limit ?? -1,
      page?.offset ?? 0,
    ) as Row[];
    return rows.map(roundFromRow);
  }

  async commitRound(input: CommitInput): Promise<void> {
    const { version: v, round, task, by } = input;
    this.tx(() => {
      if (!this.q('SELECT 1 FROM tasks WHERE id = ?').get(task.id)) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: task.id });
      if (input.fence !== undefined) this.raiseFence(task.id, input.fence);
      this.ensureModel(v.model, v.createdAt);
      this.insertVersion(v);
      this.upsertRound(round);
      this.patchTask(task.id, commitTaskPatch(task));
      this.moveAlias(v.model, 'latest', v.version, by, v.createdAt, 'set');
    });
  }

  async claimFence(taskId: string, token: number): Promise<void> {
    this.tx(() => this.raiseFence(taskId, token));
  }

  /** Inside a transaction: refuse a token below the stored one, else store it. */
  private raiseFence(taskId: string, token: number): void {
    const r = this.q('SELECT fence FROM tasks WHERE id = ?').get(taskId) as { fence: number } | undefined;
    if (!r) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: taskId });
    if (r.fence > token) throw new AppError('FL_ERR_CLUSTER_STALE_LEADER', { task: taskId, token, current: r.fence });
    if (r.fence < token) this.q('UPDATE tasks SET fence = ? WHERE id = ?').run(token, taskId);
  }

  // ---- models and versions ----

  private ensureModel(name: string, createdAt: number): void {
    this.q('INSERT OR IGNORE INTO models (name, created_at) VALUES (?, ?)').run(name, createdAt);
  }

  /** Inside a transaction: insert a version or fail with FL_ERR_VERSION_IMMUTABLE. */
  private insertVersion(v: VersionRecord): void {
    try {
      this.q(
        `INSERT INTO versions (model, version, created_at, task_id, round, parent_version, parent_model, spec, onnx, metrics, artifacts, tags, description, archived)
         VALUES (@model, @version, @created_at, @task_id, @round, @parent_version, @parent_model, @spec, @onnx, @metrics, @artifacts, @tags, @description, @archived)`,
      ).run(versionToRow(v));
    } catch (err) {
      if (isDuplicate(err)) throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model: v.model, version: v.version });
      throw err;
    }
  }

  async listModels(): Promise<ModelRecord[]> {
    return (this.q('SELECT * FROM models ORDER BY name').all() as Row[]).map(modelFromRow);
  }

  async getModel(name: string): Promise<ModelRecord | null> {
    const r = this.q('SELECT * FROM models WHERE name = ?').get(name) as Row | undefined;
    return r ? modelFromRow(r) : null;
  }

  async getVersion(model: string, version: number): Promise<VersionRecord | null> {
    const r = this.q('SELECT * FROM versions WHERE model = ? AND version = ?').get(model, version) as Row | undefined;
    return r ? versionFromRow(r) : null;
  }

  async listVersions(model: string, query?: VersionQuery): Promise<VersionRecord[]> {
    const where = ['v.model = @model'];
    const params: Row = { model, limit: query?.limit ?? -1, offset: query?.offset ?? 0 };
    if (!query?.includeArchived) where.push('v.archived = 0');
    if (query?.tag !== undefined) {
      where.push('EXISTS (SELECT 1 FROM json_each(v.tags) WHERE json_each.value = @tag)');
      params.tag = query.tag;
    }
    if (query?.alias !== undefined) {
      where.push('v.version = (SELECT a.version FROM aliases a WHERE a.model = v.model AND a.alias = @alias)');
      params.alias = query.alias;
    }
    const sql = `SELECT v.* FROM versions v WHERE ${where.join(' AND ')} ORDER BY v.version DESC LIMIT @limit OFFSET @offset`;
    return (this.q(sql).all(params) as Row[]).map(versionFromRow);
  }

  async putVersion(v: VersionRecord, by: string): Promise<void> {
    this.tx(() => {
      this.ensureModel(v.model, v.createdAt);
      this.insertVersion(v);
      this.moveAlias(v.model, 'latest', v.version, by, v.createdAt, 'set');
    });
  }

  async setArchived(model: string, version: number, archived: boolean): Promise<void> {
    const res = this.q('UPDATE versions SET archived = ? WHERE model = ? AND version = ?').run(archived ? 1 : 0, model, version);
    if (res.changes === 0) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
  }

  async addVersionMetrics(model: string, version: number, metrics: Record<string, number>): Promise<void> {
    this.tx(() => {
      const r = this.q('SELECT metrics FROM versions WHERE model = ? AND version = ?').get(model, version) as Row | undefined;
      if (!r) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
      const current = parse<Record<string, number>>(r.metrics);
      const merged = { ...metrics, ...current };
      this.q('UPDATE versions SET metrics = ? WHERE model = ? AND version = ?').run(json(merged), model, version);
    });
  }

  async addVersionArtifacts(model: string, version: number, artifacts: ArtifactRef[]): Promise<void> {
    this.tx(() => {
      const r = this.q('SELECT artifacts FROM versions WHERE model = ? AND version = ?').get(model, version) as Row | undefined;
      if (!r) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
      const current = parse<ArtifactRef[]>(r.artifacts);
      const taken = artifacts.filter((a) => current.some((c) => c.name === a.name)).map((a) => a.name);
      if (taken.length) throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model, version, artifacts: taken });
      this.q('UPDATE versions SET artifacts = ? WHERE model = ? AND version = ?').run(json([...current, ...artifacts]), model, version);
    });
  }

  // ---- aliases ----

  async getAlias(model: string, alias: string): Promise<AliasRecord | null> {
    const r = this.q('SELECT * FROM aliases WHERE model = ? AND alias = ?').get(model, alias) as Row | undefined;
    return r ? aliasFromRow(r) : null;
  }

  async listAliases(model: string): Promise<AliasRecord[]> {
    return (this.q('SELECT * FROM aliases WHERE model = ? ORDER BY alias').all(model) as Row[]).map(aliasFromRow);
  }

  async setAlias(model: string, alias: string, version: number, by: string, action: Exclude<AliasAction, 'delete'> = 'set'): Promise<AliasRecord> {
    return this.tx(() => {
      if (!this.q('SELECT 1 FROM versions WHERE model = ? AND version = ?').get(model, version)) {
        throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
      }
      return this.moveAlias(model, alias, version, by, Date.now(), action);
    });
  }

  async deleteAlias(model: string, alias: string, by: string): Promise<void> {
    this.tx(() => {
      const prev = this.q('SELECT version FROM aliases WHERE model = ? AND alias = ?').get(model, alias) as Row | undefined;
      if (!prev) throw new AppError('FL_ERR_ALIAS_NOT_FOUND', { model, alias });
      this.q('DELETE FROM aliases WHERE model = ? AND alias = ?').run(model, alias);
      this.q('INSERT INTO alias_history (model, alias, from_version, to_version, at, by, action) VALUES (?, ?, ?, NULL, ?, ?, ?)').run(
        model,
        alias,
        prev.version,
        Date.now(),
        by,
        'delete',
      );
    });
  }

  async aliasHistory(model: string, alias?: string): Promise<AliasHistoryRecord[]> {
    const rows =
      alias === undefined
        ? this.q('SELECT * FROM alias_history WHERE model = ? ORDER BY at DESC, seq DESC').all(model)
        : this.q('SELECT * FROM alias_history WHERE model = ? AND alias = ? ORDER BY at DESC, seq DESC').all(model, alias);
    return (rows as Row[]).map(historyFromRow);
  }

  /** Inside a transaction: point the alias at `version` and append the history record. */
  private moveAlias(model: string, alias: string, version: number, by: string, at: number, action: AliasAction): AliasRecord {
    const prev = this.q('SELECT version FROM aliases WHERE model = ? AND alias = ?').get(model, alias) as Row | undefined;
    this.q(
      `INSERT INTO aliases (model, alias, version, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
    ).run(model, alias, version, at, by);
    this.q('INSERT INTO alias_history (model, alias, from_version, to_version, at, by, action) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      model,
      alias,
      (prev?.version as number | undefined) ?? null,
      version,
      at,
      by,
      action,
    );
    return { model, alias, version, updatedAt: at, updatedBy: by };
  }

  // ---- clients ----

  async upsertClient(c: ClientRecord): Promise<void> {
    this.q(
      `INSERT OR REPLACE INTO clients (id, task_id, first_seen, last_seen, rounds_joined, reports_accepted, reports_rejected, revoked, token_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(...clientRow(c));
  }

  async upsertClients(cs: readonly ClientRecord[]): Promise<void> {
    const stmt = this.q(
      `INSERT OR REPLACE INTO clients (id, task_id, first_seen, last_seen, rounds_joined, reports_accepted, reports_rejected, revoked, token_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.tx(() => {
      for (const c of cs) stmt.run(...clientRow(c));
    });
  }

  async getClient(id: string): Promise<ClientRecord | null> {
    const r = this.q('SELECT * FROM clients WHERE id = ?').get(id) as Row | undefined;
    return r ? clientFromRow(r) : null;
  }

  async listClients(taskId?: string): Promise<ClientRecord[]> {
    const rows = taskId === undefined ? this.q('SELECT * FROM clients ORDER BY id').all() : this.q('SELECT * FROM clients WHERE task_id = ? ORDER BY id').all(taskId);
    return (rows as Row[]).map(clientFromRow);
  }

  async countClientsByToken(tokenId: string | null): Promise<number> {
    return (this.q('SELECT COUNT(*) AS n FROM clients WHERE token_id = ?').get(tokenId ?? '') as { n: number }).n;
  }

  async deleteClientsSeenBefore(cutoff: number): Promise<string[]> {
    return this.tx(() => {
      const ids = (this.q('SELECT id FROM clients WHERE last_seen < ? AND revoked = 0').all(cutoff) as Array<{ id: string }>).map((r) => r.id);
      this.q('DELETE FROM clients WHERE last_seen < ? AND revoked = 0').run(cutoff);
      return ids;
    });
  }

  // ---- tokens ----

  async putToken(t: TokenRecord): Promise<void> {
    try {
      this.q(
        `INSERT INTO tokens (id, hash, role, task_id, endpoints, name, created_at, created_by, expires_at, revoked, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        t.id,
        t.hash,
        t.role,
        t.taskId ?? null,
        t.endpoints ? json(t.endpoints) : null,
        t.name ?? null,
        t.createdAt,
        t.createdBy,
        t.expiresAt ?? null,
        t.revoked ? 1 : 0,
        t.revokedAt ?? null,
      );
    } catch (err) {
      if (isDuplicate(err)) throw new AppError('FL_ERR_STORE_CONFLICT', { token: t.id });
      throw err;
    }
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const r = this.q('SELECT * FROM tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? tokenFromRow(r) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (this.q('SELECT * FROM tokens ORDER BY created_at DESC, id ASC').all() as Row[]).map(tokenFromRow);
  }

  async revokeToken(id: string, at: number): Promise<TokenRecord | null> {
    this.q('UPDATE tokens SET revoked = 1, revoked_at = ? WHERE id = ? AND revoked = 0').run(at, id);
    return this.getToken(id);
  }

  // ---- serving (whole records as JSON; the columns are what is filtered and sorted on) ----

  async createDeployment(d: DeploymentRecord): Promise<void> {
    try {
      this.q('INSERT INTO deployments (name, record) VALUES (?, ?)').run(d.name, json(d));
    } catch (err) {
      if (isDuplicate(err)) throw new AppError('FL_ERR_DEPLOYMENT_EXISTS', { deployment: d.name });
      throw err;
    }
  }

  async getDeployment(name: string): Promise<DeploymentRecord | null> {
    const r = this.q('SELECT record FROM deployments WHERE name = ?').get(name) as Row | undefined;
    return r ? parse(r.record) : null;
  }

  async listDeployments(): Promise<DeploymentRecord[]> {
    return (this.q('SELECT record FROM deployments ORDER BY name').all() as Row[]).map((r) => parse(r.record));
  }

  async updateDeployment(name: string, patch: Partial<Omit<DeploymentRecord, 'name' | 'createdAt'>>): Promise<DeploymentRecord> {
    return this.tx(() => {
      const r = this.q('SELECT record FROM deployments WHERE name = ?').get(name) as Row | undefined;
      if (!r) throw new AppError('FL_ERR_DEPLOYMENT_NOT_FOUND', { deployment: name });
      const prev = parse<DeploymentRecord>(r.record);
      // JSON drops keys given as undefined, as the other stores do.
      const next: DeploymentRecord = parse(json({ ...prev, ...patch, name, createdAt: prev.createdAt, updatedAt: Date.now() }));
      this.q('UPDATE deployments SET record = ? WHERE name = ?').run(json(next), name);
      return next;
    });
  }

  async deleteDeployment(name: string): Promise<void> {
    if (this.q('DELETE FROM deployments WHERE name = ?').run(name).changes === 0) throw new AppError('FL_ERR_DEPLOYMENT_NOT_FOUND', { deployment: name });
  }

  async appendPayloads(records: PayloadRecord[], capPerModel: number): Promise<void> {
    this.tx(() => {
      const ins = this.q('INSERT INTO payloads (model, version, at, record) VALUES (?, ?, ?, ?)');
      for (const p of records) ins.run(p.model, p.version, p.at, json(p));
      for (const model of new Set(records.map((p) => p.model))) {
        this.q(
          `DELETE FROM payloads WHERE model = @model AND seq NOT IN
             (SELECT seq FROM payloads WHERE model = @model ORDER BY at DESC, seq DESC LIMIT @cap)`,
        ).run({ model, cap: capPerModel });
      }
    });
  }

  async listPayloads(model: string, query?: PayloadQuery): Promise<PayloadRecord[]> {
    const limit = query?.limit ?? -1;
    const offset = query?.offset ?? 0;
    const rows =
      query?.version === undefined
        ? this.q('SELECT record FROM payloads WHERE model = ? ORDER BY at DESC, seq DESC LIMIT ? OFFSET ?').all(model, limit, offset)
        : this.q('SELECT record FROM payloads WHERE model = ? AND version = ? ORDER BY at DESC, seq DESC LIMIT ? OFFSET ?').all(model, query.version, limit, offset);
    return (rows as Row[]).map((r) => parse(r.record));
  }

  async countPayloads(model: string, version?: number): Promise<number> {
    const r =
      version === undefined
        ? this.q('SELECT COUNT(*) AS n FROM payloads WHERE model = ?').get(model)
        : this.q('SELECT COUNT(*) AS n FROM payloads WHERE model = ? AND version = ?').get(model, version);
    return (r as Row).n as number;
  }

  async putInputStats(stats: InputStatsRecord): Promise<void> {
    this.q('INSERT OR REPLACE INTO input_stats (model, version, record) VALUES (?, ?, ?)').run(stats.model, stats.version, json(stats));
  }

  async getInputStats(model: string, version: number): Promise<InputStatsRecord | null> {
    const r = this.q('SELECT record FROM input_stats WHERE model = ? AND version = ?').get(model, version) as Row | undefined;
    return r ? parse(r.record) : null;
  }
}
