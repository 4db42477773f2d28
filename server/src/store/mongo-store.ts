import { MongoClient, MongoServerError, type ClientSession, type Collection, type Db, type Document } from 'mongodb';
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
import type { ArtifactRef, DeploymentRecord, InputStatsRecord, PayloadRecord } from './records.js';
import { commitTaskPatch, type CommitInput, type PageOptions, type PayloadQuery, type Store, type VersionQuery } from './store.js';

export interface MongoStoreOptions {
  /** mongodb:// or mongodb+srv:// URL (`--mongodb-url`, FLOTILLA_MONGODB_URL). */
  url: string;
  /** Database name; defaults to the one in the URL, else 'flotilla'. */
  dbName?: string;
  /** How long init waits for a reachable server before FL_ERR_STORE_UNAVAILABLE. */
  serverSelectionTimeoutMS?: number;
  /** Share a connected client (the GridFS blob store uses the same one); the store then does not close it. */
  client?: MongoClient;
  /** Read only (serving replicas, docs/deploy.md): init creates no collection or index and rolls nothing forward. */
  readonly?: boolean;
}

const DUPLICATE_KEY = 11000;
/** createCollection raced with another coordinator's. */
const NAMESPACE_EXISTS = 48;
/** Every collection the store uses (created by init). */
const COLLECTIONS = ['tasks', 'rounds', 'models', 'versions', 'aliases', 'alias_history', 'clients', 'tokens', 'deployments', 'payloads', 'input_stats'] as const;
const isDuplicate = (err: unknown) => err instanceof MongoServerError && err.code === DUPLICATE_KEY;

/** The database named in a mongodb:// URL (hosts may be a comma-separated list), else 'flotilla'. */
export function dbNameOf(url: string): string {
  const m = /^mongodb(?:\+srv)?:\/\/[^/]*\/([^?]+)/.exec(url);
  return m ? decodeURIComponent(m[1]) : 'flotilla';
}

/** Drop Mongo's `_id` and internal fields: stores return exactly the record shapes. */
function strip<T>(doc: Document | null, drop: readonly string[] = []): T | null {
  if (!doc) return null;
  const { _id, ...rest } = doc;
  for (const k of drop) delete rest[k];
  return rest as T;
}

/** A task record keyed by its id. */
const taskDoc = (t: TaskRecord) => {
  const { id, ...rest } = t;
  return { _id: id, ...rest };
};
const taskOf = (d: Document | null): TaskRecord | null => (d ? ({ id: d._id as string, ...strip<Omit<TaskRecord, 'id'>>(d)! } as TaskRecord) : null);

/** $set / $unset for a patch: keys given as undefined are removed, as in `{ ...record, ...patch }`. */
function patchUpdate(patch: Record<string, unknown>, now: number): Document {
  const $set: Document = { updatedAt: now };
  const $unset: Document = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === 'id' || k === 'createdAt' || k === 'updatedAt') continue;
    if (v === undefined) $unset[k] = '';
    else $set[k] = v;
  }
  return Object.keys($unset).length ? { $set, $unset } : { $set };
}

/**
 * Store on MongoDB through the official driver: several coordinators can share it.
 *
 * Guarantees: every write uses majority write concern (set on the client) and reads use majority
 * read concern, so an acknowledged commit survives a primary failover. Indexes are created by
 * init. Metric names are stored as field names, so they must not contain '.' or start with '$'.
 *
 * Atomicity: on a replica set or sharded cluster (where the server supports transactions),
 * createTask, commitRound, putVersion and alias moves each run in one multi-document transaction
 * (`session.withTransaction`, snapshot read concern, majority write concern), so they change
 * together or not at all. A standalone server has no transactions: there the same writes run in
 * a fixed order whose first write decides: the version insert (its unique index makes a
 * duplicate fail before anything else changed). A crash after it leaves the version committed
 * but the task's currentVersion/nextRound or `latest` behind; init() rolls those forward from
 * the versions, so a restart sees a consistent state. The docker-compose file runs MongoDB as a
 * one-node replica set so that transactions are used.
 */
export class MongoStore implements Store {
  readonly kind = 'mongodb';
  private client: MongoClient;
  private readonly ownsClient: boolean;
  private db!: Db;
  private transactions = false;

  constructor(private readonly options: MongoStoreOptions) {
    this.ownsClient = !options.client;
    this.client =
      options.client ??
      new MongoClient(options.url, {
        writeConcern: { w: 'majority' },
        readConcern: { level: 'majority' },
        ignoreUndefined: true,
        serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 10_000,
      });
  }

  /** Whether commits run in multi-document transactions (false on a standalone server). */
  get usesTransactions(): boolean {
    return this.transactions;
  }

  private get tasks(): Collection<Document> {
    return this.db.collection('tasks');
  }
  /** Highest leader fencing token per task ({ _id: taskId, fence }). */
  private get fences(): Collection<Document> {
    return this.db.collection('fences');
  }
  private get rounds(): Collection<Document> {
    return this.db.collection('rounds');
  }
  private get models(): Collection<Document> {
    return this.db.collection('models');
  }
  private get versions(): Collection<Document> {
    return this.db.collection('versions');
  }
  private get aliases(): Collection<Document> {
    return this.db.collection('aliases');
  }
  private get history(): Collection<Document> {
    return this.db.collection('alias_history');
  }
  private get clients(): Collection<Document> {
    return this.db.collection('clients');
  }
  private get tokens(): Collection<Document> {
    return this.db.collection('tokens');
  }
  private get deployments(): Collection<Document> {
    return this.db.collection('deployments');
  }
  private get payloads(): Collection<Document> {
    return this.db.collection('payloads');
  }
  private get inputStats(): Collection<Document> {
    return this.db.collection('input_stats');
  }

  async init(): Promise<void> {
    try {
      await this.client.connect();
      this.db = this.client.db(this.options.dbName ?? dbNameOf(this.options.url));
      const hello = await this.db.admin().command({ hello: 1 });
      this.transactions = typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
    } catch (err) {
      throw new AppError('FL_ERR_STORE_UNAVAILABLE', { store: 'mongodb', why: (err as Error).message });
    }
    if (this.options.readonly) return;
    // Collections are created here, not implicitly inside a transaction: servers before 4.4 and
    // cross-shard transactions refuse to create them there.
    const existing = new Set((await this.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
    for (const name of COLLECTIONS) {
      if (existing.has(name)) continue;
      await this.db.createCollection(name).catch((err: unknown) => {
        if (!(err instanceof MongoServerError && err.code === NAMESPACE_EXISTS)) throw err;
      });
    }
    await Promise.all([
      this.rounds.createIndex({ taskId: 1, round: -1 }, { unique: true }),
      this.versions.createIndex({ model: 1, version: -1 }, { unique: true }),
      this.versions.createIndex({ model: 1, tags: 1, version: -1 }),
      this.versions.createIndex({ taskId: 1, version: -1 }),
      this.aliases.createIndex({ model: 1, alias: 1 }, { unique: true }),
      this.history.createIndex({ model: 1, alias: 1, at: -1 }),
      this.clients.createIndex({ taskId: 1 }),
      this.tokens.createIndex({ createdAt: -1, _id: 1 }),
      this.payloads.createIndex({ model: 1, at: -1, _id: -1 }),
      this.payloads.createIndex({ model: 1, version: 1, at: -1, _id: -1 }),
      this.inputStats.createIndex({ model: 1, version: 1 }, { unique: true }),
    ]);
    if (!this.transactions) await this.rollForward();
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  async ping(): Promise<boolean> {
    try {
      await this.db.command({ ping: 1 });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Run `fn` atomically where the server allows it (see the class comment). `fn` must await every
   * operation it starts so that a failure aborts the transaction.
   */
  private async atomically<T>(fn: (session: ClientSession | undefined) => Promise<T>): Promise<T> {
    if (!this.transactions) return fn(undefined);
    return this.client.withSession((session) =>
      session.withTransaction(() => fn(session), { readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' } }),
    );
  }

  // ---- tasks ----

  async createTask(task: TaskRecord, initial: VersionRecord): Promise<void> {
    await this.atomically(async (session) => {
      if (await this.tasks.findOne({ _id: task.id as never }, { session })) throw new AppError('FL_ERR_TASK_EXISTS', { task: task.id });
      await this.ensureModel(task.modelName, task.createdAt, session);
      await this.ensureModel(initial.model, initial.createdAt, session);
      await this.insertVersion(initial, session);
      try {
        await this.tasks.insertOne(taskDoc(task) as Document, { session });
      } catch (err) {
        if (isDuplicate(err)) throw new AppError('FL_ERR_TASK_EXISTS', { task: task.id });
        throw err;
      }
      await this.moveAlias(initial.model, 'latest', initial.version, 'system', initial.createdAt, 'set', session);
    });
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    return taskOf(await this.tasks.findOne({ _id: id as never }));
  }

  async listTasks(): Promise<TaskRecord[]> {
    return (await this.tasks.find({}).sort({ createdAt: 1, _id: 1 }).toArray()).map((d) => taskOf(d)!);
  }

  async updateTask(id: string, patch: Partial<Omit<TaskRecord, 'id' | 'createdAt'>>): Promise<TaskRecord> {
    const d = await this.tasks.findOneAndUpdate({ _id: id as never }, patchUpdate(patch, Date.now()), { returnDocument: 'after' });
    if (!d) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: id });
    return taskOf(d)!;
  }

  // ---- rounds ----

  async saveRound(round: RoundRecord): Promise<void> {
    await this.rounds.replaceOne({ taskId: round.taskId, round: round.round }, round, { upsert: true });
  }

  async getRound(taskId: string, round: number): Promise<RoundRecord | null> {
    return strip<RoundRecord>(await this.rounds.findOne({ taskId, round }));
  }

  async listRounds(taskId: string, page?: PageOptions): Promise<RoundRecord[]> {
    const cur = this.rounds.find({ taskId }).sort({ round: -1 }).skip(page?.offset ?? 0);
    if (page?.limit !== undefined) cur.limit(page.limit);
    return (await cur.toArray()).map((d) => strip<RoundRecord>(d)!);
  }

  async commitRound(input: CommitInput): Promise<void> {
    const { version: v, round, task, by } = input;
    await this.atomically(async (session) => {
      if (!(await this.tasks.findOne({ _id: task.id as never }, { session, projection: { _id: 1 } }))) {
        throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: task.id });
      }
      if (input.fence !== undefined) await this.raiseFence(task.id, input.fence, session);
      await this.ensureModel(v.model, v.createdAt, session);
      await this.insertVersion(v, session); // the commit point on a standalone server
      await this.rounds.replaceOne({ taskId: round.taskId, round: round.round }, round, { upsert: true, session });
      await this.tasks.updateOne({ _id: task.id as never }, patchUpdate(commitTaskPatch(task), Date.now()), { session });
      await this.moveAlias(v.model, 'latest', v.version, by, v.createdAt, 'set', session);
    });
  }

  async claimFence(taskId: string, token: number): Promise<void> {
    if (!(await this.tasks.findOne({ _id: taskId as never }, { projection: { _id: 1 } }))) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: taskId });
    await this.raiseFence(taskId, token);
  }

  /**
   * One conditional upsert: matches only when the stored token is not above `token`; a higher
   * stored token makes the upsert collide on _id (duplicate key), which is the refusal. Inside a
   * transaction the write also conflicts with a concurrent claim, so the commit aborts.
   */
  private async raiseFence(taskId: string, token: number, session?: ClientSession): Promise<void> {
    try {
      await this.fences.updateOne({ _id: taskId as never, fence: { $lte: token } }, { $set: { fence: token } }, { upsert: true, session });
    } catch (err) {
      if (isDuplicate(err)) {
        const cur = await this.fences.findOne({ _id: taskId as never }, { session });
        throw new AppError('FL_ERR_CLUSTER_STALE_LEADER', { task: taskId, token, current: cur?.fence });
      }
      throw err;
    }
  }

  // ---- models and versions ----

  private async ensureModel(name: string, createdAt: number, session?: ClientSession): Promise<void> {
    await this.models.updateOne({ _id: name as never }, { $setOnInsert: { createdAt } }, { upsert: true, session });
  }

  private async insertVersion(v: VersionRecord, session?: ClientSession): Promise<void> {
    try {
      await this.versions.insertOne({ ...v }, { session });
    } catch (err) {
      if (isDuplicate(err)) throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model: v.model, version: v.version });
      throw err;
    }
  }

  async listModels(): Promise<ModelRecord[]> {
    return (await this.models.find({}).sort({ _id: 1 }).toArray()).map((d) => ({ name: d._id as unknown as string, ...strip<Omit<ModelRecord, 'name'>>(d)! }));
  }

  async getModel(name: string): Promise<ModelRecord | null> {
    const d = await this.models.findOne({ _id: name as never });
    return d ? { name, ...strip<Omit<ModelRecord, 'name'>>(d)! } : null;
  }

  async getVersion(model: string, version: number): Promise<VersionRecord | null> {
    return strip<VersionRecord>(await this.versions.findOne({ model, version }));
  }

  async listVersions(model: string, q?: VersionQuery): Promise<VersionRecord[]> {
    const filter: Document = { model };
    if (!q?.includeArchived) filter.archived = false;
    if (q?.tag !== undefined) filter.tags = q.tag;
    if (q?.alias !== undefined) {
      const a = await this.aliases.findOne({ model, alias: q.alias });
      if (!a) return [];
      filter.version = a.version;
    }
    const cur = this.versions.find(filter).sort({ version: -1 }).skip(q?.offset ?? 0);
    if (q?.limit !== undefined) cur.limit(q.limit);
    return (await cur.toArray()).map((d) => strip<VersionRecord>(d)!);
  }

  async putVersion(v: VersionRecord, by: string): Promise<void> {
    await this.atomically(async (session) => {
      await this.ensureModel(v.model, v.createdAt, session);
      await this.insertVersion(v, session);
      await this.moveAlias(v.model, 'latest', v.version, by, v.createdAt, 'set', session);
    });
  }

  async setArchived(model: string, version: number, archived: boolean): Promise<void> {
    const r = await this.versions.updateOne({ model, version }, { $set: { archived } });
    if (r.matchedCount === 0) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
  }

  async addVersionMetrics(model: string, version: number, metrics: Record<string, number>): Promise<void> {
    // One atomic pipeline update; in $mergeObjects later objects win, so existing keys are kept.
    const r = await this.versions.updateOne({ model, version }, [{ $set: { metrics: { $mergeObjects: [{ $literal: metrics }, '$metrics'] } } }]);
    if (r.matchedCount === 0) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
  }

  async addVersionArtifacts(model: string, version: number, artifacts: ArtifactRef[]): Promise<void> {
    // One conditional update: it matches only while none of the names exists, so it is all or none.
    const names = artifacts.map((a) => a.name);
    const r = await this.versions.updateOne({ model, version, 'artifacts.name': { $nin: names } }, { $push: { artifacts: { $each: artifacts } } } as never);
    if (r.matchedCount === 1) return;
    if (!(await this.versions.findOne({ model, version }))) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
    throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model, version, artifacts: names });
  }

  // ---- aliases ----

  async getAlias(model: string, alias: string): Promise<AliasRecord | null> {
    return strip<AliasRecord>(await this.aliases.findOne({ model, alias }));
  }

  async listAliases(model: string): Promise<AliasRecord[]> {
    return (await this.aliases.find({ model }).sort({ alias: 1 }).toArray()).map((d) => strip<AliasRecord>(d)!);
  }

  async setAlias(model: string, alias: string, version: number, by: string, action: Exclude<AliasAction, 'delete'> = 'set'): Promise<AliasRecord> {
    return this.atomically(async (session) => {
      if (!(await this.versions.findOne({ model, version }, { session, projection: { _id: 1 } }))) {
        throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
      }
      return this.moveAlias(model, alias, version, by, Date.now(), action, session);
    });
  }

  async deleteAlias(model: string, alias: string, by: string): Promise<void> {
    await this.atomically(async (session) => {
      const prev = await this.aliases.findOneAndDelete({ model, alias }, { session });
      if (!prev) throw new AppError('FL_ERR_ALIAS_NOT_FOUND', { model, alias });
      await this.history.insertOne({ model, alias, from: prev.version, to: null, at: Date.now(), by, action: 'delete' }, { session });
    });
  }

  async aliasHistory(model: string, alias?: string): Promise<AliasHistoryRecord[]> {
    const filter: Document = alias === undefined ? { model } : { model, alias };
    // ObjectIds made by one driver process increase, so _id orders same-millisecond records.
    return (await this.history.find(filter).sort({ at: -1, _id: -1 }).toArray()).map((d) => strip<AliasHistoryRecord>(d)!);
  }

  private async moveAlias(
    model: string,
    alias: string,
    version: number,
    by: string,
    at: number,
    action: AliasAction,
    session: ClientSession | undefined,
  ): Promise<AliasRecord> {
    const rec: AliasRecord = { model, alias, version, updatedAt: at, updatedBy: by };
    const prev = await this.aliases.findOneAndUpdate({ model, alias }, { $set: rec }, { upsert: true, returnDocument: 'before', session });
    await this.history.insertOne({ model, alias, from: (prev?.version as number | undefined) ?? null, to: version, at, by, action }, { session });
    return rec;
  }

  // ---- clients ----

  async upsertClient(c: ClientRecord): Promise<void> {
    const { id, ...rest } = c;
    await this.clients.replaceOne({ _id: id as never }, rest, { upsert: true });
  }

  async upsertClients(cs: readonly ClientRecord[]): Promise<void> {
    if (cs.length === 0) return;
    await this.clients.bulkWrite(
      cs.map((c) => {
        const { id, ...rest } = c;
        return { replaceOne: { filter: { _id: id as never }, replacement: rest, upsert: true } };
      }),
      { ordered: false },
    );
  }

  async getClient(id: string): Promise<ClientRecord | null> {
    const d = await this.clients.findOne({ _id: id as never });
    return d ? ({ id, ...strip<Omit<ClientRecord, 'id'>>(d)! } as ClientRecord) : null;
  }

  async listClients(taskId?: string): Promise<ClientRecord[]> {
    const docs = await this.clients.find(taskId === undefined ? {} : { taskId }).sort({ _id: 1 }).toArray();
    return docs.map((d) => ({ id: d._id as unknown as string, ...strip<Omit<ClientRecord, 'id'>>(d)! }) as ClientRecord);
  }

  async countClientsByToken(tokenId: string | null): Promise<number> {
    // `{ tokenId: null }` alone would also match records with no binding (the field absent).
    return this.clients.countDocuments(tokenId === null ? { tokenId: { $type: 'null' } } : { tokenId });
  }

  /** Deletes by id the records found stale, re-checking the filter so a record touched meanwhile stays. */
  async deleteClientsSeenBefore(cutoff: number): Promise<string[]> {
    const filter = { lastSeen: { $lt: cutoff }, revoked: false };
    const ids = (await this.clients.find(filter, { projection: { _id: 1 } }).toArray()).map((d) => d._id as unknown as string);
    if (ids.length > 0) await this.clients.deleteMany({ ...filter, _id: { $in: ids as never[] } });
    return ids;
  }

  // ---- tokens ----

  async putToken(t: TokenRecord): Promise<void> {
    const { id, ...rest } = t;
    try {
      await this.tokens.insertOne({ _id: id as never, ...rest });
    } catch (err) {
      if (isDuplicate(err)) throw new AppError('FL_ERR_STORE_CONFLICT', { token: id });
      throw err;
    }
  }

  async getToken(id: string): Promise<TokenRecord | null> {
    const d = await this.tokens.findOne({ _id: id as never });
    return d ? ({ id, ...strip<Omit<TokenRecord, 'id'>>(d)! } as TokenRecord) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    const docs = await this.tokens.find({}).sort({ createdAt: -1, _id: 1 }).toArray();
    return docs.map((d) => ({ id: d._id as unknown as string, ...strip<Omit<TokenRecord, 'id'>>(d)! }) as TokenRecord);
  }

  async revokeToken(id: string, at: number): Promise<TokenRecord | null> {
    await this.tokens.updateOne({ _id: id as never, revoked: false }, { $set: { revoked: true, revokedAt: at } });
    return this.getToken(id);
  }

  // ---- serving ----

  async createDeployment(d: DeploymentRecord): Promise<void> {
    const { name, ...rest } = d;
    try {
      await this.deployments.insertOne({ _id: name as never, ...rest });
    } catch (err) {
      if (isDuplicate(err)) throw new AppError('FL_ERR_DEPLOYMENT_EXISTS', { deployment: name });
      throw err;
    }
  }

  async getDeployment(name: string): Promise<DeploymentRecord | null> {
    const d = await this.deployments.findOne({ _id: name as never });
    return d ? ({ name, ...strip<Omit<DeploymentRecord, 'name'>>(d)! } as DeploymentRecord) : null;
  }

  async listDeployments(): Promise<DeploymentRecord[]> {
    const docs = await this.deployments.find({}).sort({ _id: 1 }).toArray();
    return docs.map((d) => ({ name: d._id as unknown as string, ...strip<Omit<DeploymentRecord, 'name'>>(d)! }) as DeploymentRecord);
  }

  async updateDeployment(name: string, patch: Partial<Omit<DeploymentRecord, 'name' | 'createdAt'>>): Promise<DeploymentRecord> {
    const d = await this.deployments.findOneAndUpdate({ _id: name as never }, patchUpdate(patch, Date.now()), { returnDocument: 'after' });
    if (!d) throw new AppError('FL_ERR_DEPLOYMENT_NOT_FOUND', { deployment: name });
    return { name, ...strip<Omit<DeploymentRecord, 'name'>>(d)! } as DeploymentRecord;
  }

  async deleteDeployment(name: string): Promise<void> {
    const r = await this.deployments.deleteOne({ _id: name as never });
    if (r.deletedCount === 0) throw new AppError('FL_ERR_DEPLOYMENT_NOT_FOUND', { deployment: name });
  }

  async appendPayloads(records: PayloadRecord[], capPerModel: number): Promise<void> {
    if (records.length === 0) return;
    // ObjectIds made by one driver process increase, so _id orders same-millisecond records.
    await this.payloads.insertMany(records.map((p) => ({ ...p })), { ordered: true });
    for (const model of new Set(records.map((p) => p.model))) {
      const edge = await this.payloads.find({ model }).sort({ at: -1, _id: -1 }).skip(capPerModel).limit(1).next();
      if (!edge) continue;
      await this.payloads.deleteMany({ model, $or: [{ at: { $lt: edge.at } }, { at: edge.at, _id: { $lte: edge._id } }] });
    }
  }

  async listPayloads(model: string, query?: PayloadQuery): Promise<PayloadRecord[]> {
    const filter: Document = query?.version === undefined ? { model } : { model, version: query.version };
    const cur = this.payloads.find(filter).sort({ at: -1, _id: -1 }).skip(query?.offset ?? 0);
    if (query?.limit !== undefined) cur.limit(query.limit);
    return (await cur.toArray()).map((d) => strip<PayloadRecord>(d)!);
  }

  async countPayloads(model: string, version?: number): Promise<number> {
    return this.payloads.countDocuments(version === undefined ? { model } : { model, version });
  }

  async putInputStats(stats: InputStatsRecord): Promise<void> {
    await this.inputStats.replaceOne({ model: stats.model, version: stats.version }, { ...stats }, { upsert: true });
  }

  async getInputStats(model: string, version: number): Promise<InputStatsRecord | null> {
    return strip<InputStatsRecord>(await this.inputStats.findOne({ model, version }));
  }

  // ---- standalone recovery ----

  /**
   * Standalone servers only (no transactions): bring each task and each model's `latest` up to
   * the newest committed version, finishing a commit that a crash interrupted after its version
   * insert. Idempotent.
   */
  private async rollForward(): Promise<void> {
    for (const t of await this.listTasks()) {
      const newest = await this.versions.find({ model: t.modelName, taskId: t.id }).sort({ version: -1 }).limit(1).next();
      if (!newest || newest.version <= t.currentVersion) continue;
      const nextRound = Math.max(t.nextRound, ((newest.round as number | undefined) ?? t.nextRound - 1) + 1);
      await this.tasks.updateOne({ _id: t.id as never }, { $set: { currentVersion: newest.version, nextRound, updatedAt: Date.now() } });
      if (newest.round !== undefined) {
        await this.rounds.updateOne(
          { taskId: t.id, round: newest.round, committedVersion: { $exists: false } },
          { $set: { state: 'done', committedVersion: newest.version } },
        );
      }
    }
    for (const m of await this.listModels()) {
      const newest = await this.versions.find({ model: m.name }).sort({ version: -1 }).limit(1).next();
      const latest = await this.getAlias(m.name, 'latest');
      if (newest && (!latest || latest.version < newest.version)) {
        await this.moveAlias(m.name, 'latest', newest.version, 'system', Date.now(), 'set', undefined);
      }
    }
  }
}
