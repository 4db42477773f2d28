import { AppError } from '@flotilla/protocol';
import type { AliasAction, AliasHistoryRecord, AliasRecord, ClientRecord, ModelRecord, RoundRecord, TaskRecord, TokenRecord, VersionRecord } from './records.js';
import type { ArtifactRef, DeploymentRecord, InputStatsRecord, PayloadRecord } from './records.js';
import { commitTaskPatch, type CommitInput, type PageOptions, type PayloadQuery, type Store, type VersionQuery } from './store.js';

const clone = <T>(x: T): T => structuredClone(x);
const vkey = (m: string, v: number) => `${m}\u0000${v}`;
const akey = (m: string, a: string) => `${m}\u0000${a}`;

function page<T>(xs: T[], p?: PageOptions): T[] {
  const off = p?.offset ?? 0;
  return xs.slice(off, p?.limit === undefined ? undefined : off + p.limit);
}

/**
 * In-process Store for tests and throwaway runs: nothing survives the process. Same contracts as
 * the durable stores (it runs the same contract suite).
 */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  private tasks = new Map<string, TaskRecord>();
  private fences = new Map<string, number>();
  private rounds = new Map<string, RoundRecord>();
  private models = new Map<string, ModelRecord>();
  private versions = new Map<string, VersionRecord>();
  private aliases = new Map<string, AliasRecord>();
  private history: AliasHistoryRecord[] = [];
  private clients = new Map<string, ClientRecord>();
  private tokens = new Map<string, TokenRecord>();
  private deployments = new Map<string, DeploymentRecord>();
  /** Write order; newest-first reads sort by `at` and then by position. */
  private payloads: PayloadRecord[] = [];
  private inputStats = new Map<string, InputStatsRecord>();

  async init(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<boolean> {
    return true;
  }

  async createTask(task: TaskRecord, initial: VersionRecord): Promise<void> {
    if (this.tasks.has(task.id)) throw new AppError('FL_ERR_TASK_EXISTS', { task: task.id });
    if (this.versions.has(vkey(initial.model, initial.version))) {
      throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model: initial.model, version: initial.version });
    }
    if (!this.models.has(task.modelName)) this.models.set(task.modelName, { name: task.modelName, createdAt: task.createdAt });
    this.tasks.set(task.id, clone(task));
    this.versions.set(vkey(initial.model, initial.version), clone(initial));
    this.moveAlias(initial.model, 'latest', initial.version, 'system', initial.createdAt);
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    const t = this.tasks.get(id);
    return t ? clone(t) : null;
  }
  async listTasks(): Promise<TaskRecord[]> {
    return [...this.tasks.values()].map(clone);
  }
  async updateTask(id: string, patch: Partial<Omit<TaskRecord, 'id' | 'createdAt'>>): Promise<TaskRecord> {
    const t = this.tasks.get(id);
    if (!t) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: id });
    const next = { ...t, ...clone(patch), updatedAt: Date.now() };
    this.tasks.set(id, next);
    return clone(next);
  }

  async saveRound(r: RoundRecord): Promise<void> {
    this.rounds.set(`${r.taskId}\u0000${r.round}`, clone(r));
  }
  async getRound(taskId: string, round: number): Promise<RoundRecord | null> {
    const r = this.rounds.get(`${taskId}\u0000${round}`);
    return r ? clone(r) : null;
  }
  async listRounds(taskId: string, p?: PageOptions): Promise<RoundRecord[]> {
    const xs = [...this.rounds.values()].filter((r) => r.taskId === taskId).sort((a, b) => b.round - a.round);
    return page(xs, p).map(clone);
  }

  async commitRound(input: CommitInput): Promise<void> {
    const { version: v, round, task, by } = input;
    if (this.versions.has(vkey(v.model, v.version))) throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model: v.model, version: v.version });
    const t = this.tasks.get(task.id);
    if (!t) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: task.id });
    if (input.fence !== undefined) this.checkFence(task.id, input.fence);
    // All checks done: apply every change (nothing below can throw).
    if (!this.models.has(v.model)) this.models.set(v.model, { name: v.model, createdAt: v.createdAt });
    this.versions.set(vkey(v.model, v.version), clone(v));
    this.rounds.set(`${round.taskId}\u0000${round.round}`, clone(round));
    this.tasks.set(task.id, { ...t, ...clone(commitTaskPatch(task)), updatedAt: Date.now() });
    this.moveAlias(v.model, 'latest', v.version, by, v.createdAt);
    if (input.fence !== undefined) this.fences.set(task.id, input.fence);
  }

  async claimFence(taskId: string, token: number): Promise<void> {
    if (!this.tasks.has(taskId)) throw new AppError('FL_ERR_TASK_NOT_FOUND', { task: taskId });
    this.checkFence(taskId, token);
    this.fences.set(taskId, token);
  }

  private checkFence(taskId: string, token: number): void {
    const current = this.fences.get(taskId) ?? 0;
    if (current > token) throw new AppError('FL_ERR_CLUSTER_STALE_LEADER', { task: taskId, token, current });
  }

  async listModels(): Promise<ModelRecord[]> {
    return [...this.models.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(clone);
  }
  async getModel(name: string): Promise<ModelRecord | null> {
    const m = this.models.get(name);
    return m ? clone(m) : null;
  }
  async getVersion(model: string, version: number): Promise<VersionRecord | null> {
    const v = this.versions.get(vkey(model, version));
    return v ? clone(v) : null;
  }
  async listVersions(model: string, q?: VersionQuery): Promise<VersionRecord[]> {
    let xs = [...this.versions.values()].filter((v) => v.model === model).sort((a, b) => b.version - a.version);
    if (!q?.includeArchived) xs = xs.filter((v) => !v.archived);
    if (q?.tag) xs = xs.filter((v) => v.tags.includes(q.tag!));
    if (q?.alias) {
      const a = this.aliases.get(akey(model, q.alias));
      xs = a ? xs.filter((v) => v.version === a.version) : [];
    }
    return page(xs, q).map(clone);
  }
  async putVersion(v: VersionRecord, by: string): Promise<void> {
    if (this.versions.has(vkey(v.model, v.version))) throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model: v.model, version: v.version });
    if (!this.models.has(v.model)) this.models.set(v.model, { name: v.model, createdAt: v.createdAt });
    this.versions.set(vkey(v.model, v.version), clone(v));
    this.moveAlias(v.model, 'latest', v.version, by, v.createdAt);
  }
  async setArchived(model: string, version: number, archived: boolean): Promise<void> {
    const v = this.versions.get(vkey(model, version));
    if (!v) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
    v.archived = archived;
  }
  async addVersionMetrics(model: string, version: number, metrics: Record<string, number>): Promise<void> {
    const v = this.versions.get(vkey(model, version));
    if (!v) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
    for (const [k, x] of Object.entries(metrics)) if (!(k in v.metrics)) v.metrics[k] = x;
  }
  async addVersionArtifacts(model: string, version: number, artifacts: ArtifactRef[]): Promise<void> {
    const v = this.versions.get(vkey(model, version));
    if (!v) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
    const taken = artifacts.filter((a) => v.artifacts.some((c) => c.name === a.name)).map((a) => a.name);
    if (taken.length) throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model, version, artifacts: taken });
    v.artifacts.push(...clone(artifacts));
  }

  async getAlias(model: string, alias: string): Promise<AliasRecord | null> {
    const a = this.aliases.get(akey(model, alias));
    return a ? clone(a) : null;
  }
  async listAliases(model: string): Promise<AliasRecord[]> {
    return [...this.aliases.values()]
      .filter((a) => a.model === model)
      .sort((a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0))
      .map(clone);
  }
  async setAlias(model: string, alias: string, version: number, by: string, action: Exclude<AliasAction, 'delete'> = 'set'): Promise<AliasRecord> {
    if (!this.versions.has(vkey(model, version))) throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
    return clone(this.moveAlias(model, alias, version, by, Date.now(), action));
  }
  async deleteAlias(model: string, alias: string, by: string): Promise<void> {
    const a = this.aliases.get(akey(model, alias));
    if (!a) throw new AppError('FL_ERR_ALIAS_NOT_FOUND', { model, alias });
    this.aliases.delete(akey(model, alias));
    this.history.push({ model, alias, from: a.version, to: null, at: Date.now(), by, action: 'delete' });
  }
  async aliasHistory(model: string, alias?: string): Promise<AliasHistoryRecord[]> {
    // Reverse first so that the stable sort keeps records written in the same millisecond newest first.
    return this.history
      .filter((h) => h.model === model && (alias === undefined || h.alias === alias))
      .reverse()
      .sort((a, b) => b.at - a.at)
      .map(clone);
  }

  async upsertClient(c: ClientRecord): Promise<void> {
    this.clients.set(c.id, clone(c));
  }
  async upsertClients(cs: readonly ClientRecord[]): Promise<void> {
    for (const c of cs) this.clients.set(c.id, clone(c));
  }
  async getClient(id: string): Promise<ClientRecord | null> {
    const c = this.clients.get(id);
    return c ? clone(c) : null;
  }
  async listClients(taskId?: string): Promise<ClientRecord[]> {
    return [...this.clients.values()].filter((c) => taskId === undefined || c.taskId === taskId).map(clone);
  }
  async countClientsByToken(tokenId: string | null): Promise<number> {
    let n = 0;
    for (const c of this.clients.values()) if (c.tokenId === tokenId) n++;
    return n;
  }
  async deleteClientsSeenBefore(cutoff: number): Promise<string[]> {
    const gone = [...this.clients.values()].filter((c) => c.lastSeen < cutoff && !c.revoked).map((c) => c.id);
    for (const id of gone) this.clients.delete(id);
    return gone;
  }

  async putToken(t: TokenRecord): Promise<void> {
    if (this.tokens.has(t.id)) throw new AppError('FL_ERR_STORE_CONFLICT', { token: t.id });
    this.tokens.set(t.id, clone(t));
  }
  async getToken(id: string): Promise<TokenRecord | null> {
    const t = this.tokens.get(id);
    return t ? clone(t) : null;
  }
  async listTokens(): Promise<TokenRecord[]> {
    return [...this.tokens.values()].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(clone);
  }
  async revokeToken(id: string, at: number): Promise<TokenRecord | null> {
    const t = this.tokens.get(id);
    if (!t) return null;
    if (!t.revoked) {
      t.revoked = true;
      t.revokedAt = at;
    }
    return clone(t);
  }

  // ---- serving ----

  async createDeployment(d: DeploymentRecord): Promise<void> {
    if (this.deployments.has(d.name)) throw new AppError('FL_ERR_DEPLOYMENT_EXISTS', { deployment: d.name });
    this.deployments.set(d.name, clone(d));
  }
  async getDeployment(name: string): Promise<DeploymentRecord | null> {
    const d = this.deployments.get(name);
    return d ? clone(d) : null;
  }
  async listDeployments(): Promise<DeploymentRecord[]> {
    return [...this.deployments.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(clone);
  }
  async updateDeployment(name: string, patch: Partial<Omit<DeploymentRecord, 'name' | 'createdAt'>>): Promise<DeploymentRecord> {
    const d = this.deployments.get(name);
    if (!d) throw new AppError('FL_ERR_DEPLOYMENT_NOT_FOUND', { deployment: name });
    const next: DeploymentRecord = { ...d, ...clone(patch), name, createdAt: d.createdAt, updatedAt: Date.now() };
    for (const k of Object.keys(next) as (keyof DeploymentRecord)[]) if (next[k] === undefined) delete next[k];
    this.deployments.set(name, next);
    return clone(next);
  }
  async deleteDeployment(name: string): Promise<void> {
    if (!this.deployments.delete(name)) throw new AppError('FL_ERR_DEPLOYMENT_NOT_FOUND', { deployment: name });
  }

  async appendPayloads(records: PayloadRecord[], capPerModel: number): Promise<void> {
    this.payloads.push(...records.map(clone));
    for (const model of new Set(records.map((r) => r.model))) {
      const newest = this.newestPayloads(model);
      if (newest.length <= capPerModel) continue;
      const drop = new Set(newest.slice(capPerModel));
      this.payloads = this.payloads.filter((p) => !drop.has(p));
    }
  }
  async listPayloads(model: string, q?: PayloadQuery): Promise<PayloadRecord[]> {
    const xs = this.newestPayloads(model).filter((p) => q?.version === undefined || p.version === q.version);
    return page(xs, q).map(clone);
  }
  async countPayloads(model: string, version?: number): Promise<number> {
    return this.payloads.filter((p) => p.model === model && (version === undefined || p.version === version)).length;
  }
  private newestPayloads(model: string): PayloadRecord[] {
    // Reverse first so that the stable sort keeps same-millisecond records newest first.
    return this.payloads
      .filter((p) => p.model === model)
      .reverse()
      .sort((a, b) => b.at - a.at);
  }

  async putInputStats(stats: InputStatsRecord): Promise<void> {
    this.inputStats.set(vkey(stats.model, stats.version), clone(stats));
  }
  async getInputStats(model: string, version: number): Promise<InputStatsRecord | null> {
    const x = this.inputStats.get(vkey(model, version));
    return x ? clone(x) : null;
  }

  private moveAlias(model: string, alias: string, version: number, by: string, at: number, action: Exclude<AliasAction, 'delete'> = 'set'): AliasRecord {
    const prev = this.aliases.get(akey(model, alias));
    const rec: AliasRecord = { model, alias, version, updatedAt: at, updatedBy: by };
    this.aliases.set(akey(model, alias), rec);
    this.history.push({ model, alias, from: prev?.version ?? null, to: version, at, by, action });
    return rec;
  }
}
