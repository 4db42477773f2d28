import type { Database } from 'better-sqlite3';
import { AppError } from '@flotilla/protocol';

/**
 * Schema migrations of the SQLite store, applied in order by `migrate`. The database's
 * `PRAGMA user_version` is the number of migrations applied. Contract: a migration is never
 * edited once released; a schema change is a new entry at the end. Each migration runs in its own
 * transaction together with the user_version bump, so a crash leaves the schema at a migration
 * boundary.
 *
 * Layout: scalar fields that are filtered or sorted on are columns; nested values (spec, plan,
 * metrics, artifacts, tags, id lists) are JSON text columns.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    model_name TEXT NOT NULL,
    spec TEXT NOT NULL,
    plan TEXT NOT NULL,
    state TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    next_round INTEGER NOT NULL,
    strategy_state TEXT,
    state_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE rounds (
    task_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    state TEXT NOT NULL,
    base_version INTEGER NOT NULL,
    committed_version INTEGER,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    deadline INTEGER NOT NULL,
    failure_reason TEXT,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    aggregation_ms REAL,
    selected TEXT NOT NULL,
    reported TEXT NOT NULL,
    rejected TEXT NOT NULL,
    dropped TEXT NOT NULL,
    train_metrics TEXT NOT NULL,
    eval_metrics TEXT NOT NULL,
    central_metrics TEXT NOT NULL,
    PRIMARY KEY (task_id, round)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE models (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    description TEXT
  ) STRICT;

  CREATE TABLE versions (
    model TEXT NOT NULL REFERENCES models(name),
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    task_id TEXT,
    round INTEGER,
    parent_version INTEGER,
    spec TEXT NOT NULL,
    metrics TEXT NOT NULL,
    artifacts TEXT NOT NULL,
    tags TEXT NOT NULL,
    description TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (model, version)
  ) STRICT;
  CREATE INDEX versions_task ON versions(task_id, version);

  CREATE TABLE aliases (
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE alias_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER,
    at INTEGER NOT NULL,
    by TEXT NOT NULL,
    action TEXT NOT NULL
  ) STRICT;
  CREATE INDEX alias_history_model ON alias_history(model, alias, seq);

  CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    rounds_joined INTEGER NOT NULL,
    reports_accepted INTEGER NOT NULL,
    reports_rejected INTEGER NOT NULL,
    revoked INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX clients_task ON clients(task_id);
  `,
  // 2: API and enrolment tokens (only the sha256 of each secret is stored).
  `
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    task_id TEXT,
    name TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires_at INTEGER,
    revoked INTEGER NOT NULL,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX tokens_created ON tokens(created_at);
  `,
  // 3: serving — deployments, the sampled payload log (capped per model), drift references.
  `
  CREATE TABLE deployments (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
  ) STRICT;

  CREATE TABLE payloads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    at INTEGER NOT NULL,
    record TEXT NOT NULL
  ) STRICT;
  CREATE INDEX payloads_model ON payloads(model, at, seq);
  CREATE INDEX payloads_model_version ON payloads(model, version, at, seq);

  CREATE TABLE input_stats (
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (model, version)
  ) STRICT, WITHOUT ROWID;
  `,
  // 4: a task's update-screening history (recent accepted norms), saved with each commit.
  `
  ALTER TABLE tasks ADD COLUMN screening_state TEXT;
  `,
  // 5: the credential a device id is bound to ('' marks the bootstrap device token; NULL: not bound yet).
  `
  ALTER TABLE clients ADD COLUMN token_id TEXT;
  `,
  // 6: inference tokens scoped to endpoints (a JSON array of names; NULL: every endpoint).
  `
  ALTER TABLE tokens ADD COLUMN endpoints TEXT;
  `,
  // 7: lineage across models: the model a version was fine-tuned from (parent_version is its version there).
  `
  ALTER TABLE versions ADD COLUMN parent_model TEXT;
  `,
  // 8: ONNX versions: their signature (JSON; NULL for tfjs versions, whose spec column then holds 'null').
  `
  ALTER TABLE versions ADD COLUMN onnx TEXT;
  `,
  // 9: the secure-aggregation view of a round (JSON; NULL for plain rounds).
  `
  ALTER TABLE rounds ADD COLUMN secure_aggregation TEXT;
  `,
  // 10: cluster mode: the highest leader fencing token seen per task; a commit carrying a lower one is refused.
  `
  ALTER TABLE tasks ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
  `,
];

/**
 * Apply the migrations the database lacks. Refuses a database newer than this build. Several
 * processes may open one file at once (cluster nodes on one host): each migration takes the write
 * lock first (IMMEDIATE) and re-reads user_version under it, so exactly one process applies it.
 */
export function migrate(db: Database): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  const current = version();
  if (current > MIGRATIONS.length) {
    throw new AppError('FL_ERR_CONFIG_INVALID', { why: 'flotilla.db was written by a newer Flotilla', schemaVersion: current, known: MIGRATIONS.length });
  }
  for (let i = current; i < MIGRATIONS.length; i++) {
    db.transaction(() => {
      if (version() > i) return;
      db.exec(MIGRATIONS[i]);
      db.pragma(`user_version = ${i + 1}`);
    }).immediate();
  }
}
