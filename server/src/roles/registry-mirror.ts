import { AppError, type ErrorCode } from '../errors.js';
import { targetsOf } from '../serving/router.js';
import type { BlobStore } from '../store/blob-store.js';
import { sha256Hex } from '../store/memory-blob-store.js';
import type { DeploymentRecord, VersionRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { MirrorCache } from './mirror-cache.js';
import type { RegistrySource } from './registry-source.js';

export interface MirrorOptions {
  source: RegistrySource;
  /** The process-local store and blobs serving reads (memory): the only things the mirror writes, with the cache. */
  local: { store: Store; blobs: BlobStore };
  /** Models to follow; absent: every model the upstream lists (re-listed at each sync). */
  models?: string[];
  /** Sidecar: follow only `ref` of `model`; it is mirrored under its own name and as `latest`. */
  pin?: { model: string; ref: string };
  /** Mirror the upstream's deployments too (replicas; a sidecar serves one model without them). */
  deployments: boolean;
  cache?: MirrorCache;
  /** Awaited before an alias moves to `version` locally (serving warms it there, so no request pays its load); must not throw. */
  beforeAliasMove?(model: string, version: number): Promise<void>;
  /** Called after the aliases (or versions) of `model` changed locally. */
  onModelChanged(model: string): void;
  /** Called after the local deployments changed. */
  onDeploymentsChanged(): void;
}

export interface MirrorStatus {
  /** Epoch ms of the last sync that completed, or null. */
  lastSyncAt: number | null;
  syncs: number;
  failures: number;
  lastError: { code: ErrorCode; message: string; details?: unknown; at: number } | null;
  /** `model@ref` -> the version it resolves to here. */
  synced: Record<string, number>;
  /** Where the state came from at start: the cache (`restored`) or nothing. */
  restoredFromCache: number;
}

const BY = 'mirror';
const NUMERIC = /^[0-9]{1,15}$/;

/**
 * Copies what a serving process needs from the registry upstream into its local (memory) store:
 * versions that aliases and deployments name, with their artifacts, then the aliases themselves.
 * Contracts:
 *  - every artifact's sha256 and size are checked against its version record before anything
 *    local changes; a mismatch throws FL_ERR_UPSTREAM_CORRUPT and the aliases keep pointing at
 *    the versions already mirrored (the last good ones keep serving);
 *  - a version is visible locally only once all its artifacts are; aliases move after that;
 *  - an alias that disappears upstream is removed locally, except the sidecar's pinned one,
 *    which keeps its last version (and `lastError` says why);
 *  - a failed sync changes nothing it had not finished and is retried at the next `sync()`;
 *    `status.lastError` keeps the error until a sync succeeds;
 *  - with a cache, a sync that changed something is saved to disk (mirror-cache.ts), and
 *    `restore()` serves that state before the upstream answers.
 */
export class RegistryMirror {
  readonly status: MirrorStatus = { lastSyncAt: null, syncs: 0, failures: 0, lastError: null, synced: {}, restoredFromCache: 0 };
  private readonly etags = new Map<string, string>();
  private running: Promise<void> | null = null;
  private again = false;

  constructor(private readonly opts: MirrorOptions) {}

  /** Load the cached state (if any) into the local store. Returns the versions restored. */
  async restore(): Promise<number> {
    const loaded = await this.opts.cache?.load();
    if (!loaded) return 0;
    const { store, blobs } = this.opts.local;
    // A cache written for another --model is not served.
    const mine = (model: string) => !this.opts.pin || model === this.opts.pin.model;
    loaded.state.versions = loaded.state.versions.filter((v) => mine(v.model));
    loaded.state.aliases = loaded.state.aliases.filter((a) => mine(a.model));
    for (const v of loaded.state.versions) {
      for (const a of v.artifacts) await blobs.put(loaded.blobs.get(a.sha256)!);
      if (!(await store.getVersion(v.model, v.version))) await store.putVersion(v, BY);
    }
    for (const a of loaded.state.aliases) await store.setAlias(a.model, a.alias, a.version, BY);
    for (const model of new Set(loaded.state.versions.map((v) => v.model))) this.opts.onModelChanged(model);
    await this.noteSynced();
    this.status.restoredFromCache = loaded.state.versions.length;
    if (loaded.damaged.length > 0) this.fail(new AppError('FL_ERR_UPSTREAM_CORRUPT', { cache: this.opts.cache!.dir, damaged: loaded.damaged }));
    return loaded.state.versions.length;
  }

  /** One pass over the followed models (and deployments). Concurrent calls share one pass, plus one more if asked during it. */
  sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    })().finally(() => (this.running = null));
    return this.running;
  }

  /** Throws the first error of the pass (after recording it in status). */
  private async pass(): Promise<void> {
    try {
      let changed = false;
      const models = this.opts.pin ? [this.opts.pin.model] : (this.opts.models ?? (await this.opts.source.listModels()));
      for (const model of models) changed = (await this.syncModel(model)) || changed;
      if (this.opts.deployments) changed = (await this.syncDeployments()) || changed;
      await this.noteSynced();
      this.status.syncs++;
      this.status.lastSyncAt = Date.now();
      this.status.lastError = null;
      if (changed) await this.save();
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  private fail(err: unknown): void {
    this.status.failures++;
    const e = err instanceof AppError ? err : new AppError('FL_ERR_INTERNAL', { why: (err as Error).message });
    this.status.lastError = { code: e.code, message: e.message, ...(e.details !== undefined ? { details: e.details } : {}), at: Date.now() };
  }

  private async syncModel(model: string): Promise<boolean> {
    const { store } = this.opts.local;
    const pin = this.opts.pin;
    if (pin && NUMERIC.test(pin.ref)) {
      const v = Number(pin.ref);
      const had = await store.getVersion(model, v);
      await this.ensureVersion(model, v);
      if (!had) await store.setAlias(model, 'latest', v, BY);
      if (!had) this.opts.onModelChanged(model);
      return !had;
    }
    const snap = await this.opts.source.aliases(model, this.etags.get(model));
    if (!snap) return false;
    let wanted = snap.aliases.map((a) => ({ alias: a.alias, version: a.version }));
    if (pin) {
      const hit = wanted.find((a) => a.alias === pin.ref);
      if (!hit) throw new AppError('FL_ERR_ALIAS_NOT_FOUND', { model, alias: pin.ref, upstream: this.opts.source.describe });
      wanted = [hit, ...(pin.ref === 'latest' ? [] : [{ alias: 'latest', version: hit.version }])];
    }
    for (const v of new Set(wanted.map((a) => a.version))) await this.ensureVersion(model, v);
    let changed = false;
    const local = new Map((await store.getModel(model)) ? (await store.listAliases(model)).map((a) => [a.alias, a.version]) : []);
    const moving = new Set(wanted.filter((a) => local.get(a.alias) !== a.version).map((a) => a.version));
    for (const v of moving) await this.opts.beforeAliasMove?.(model, v);
    for (const a of wanted) {
      if (local.get(a.alias) === a.version) continue;
      await store.setAlias(model, a.alias, a.version, BY);
      changed = true;
    }
    const names = new Set(wanted.map((a) => a.alias));
    for (const alias of local.keys()) {
      if (names.has(alias) || alias === 'latest') continue;
      await store.deleteAlias(model, alias, BY);
      changed = true;
    }
    this.etags.set(model, snap.etag);
    if (changed) this.opts.onModelChanged(model);
    return changed;
  }

  /** Fetch a version and its artifacts unless mirrored already; verified before it becomes visible. */
  private async ensureVersion(model: string, version: number): Promise<VersionRecord> {
    const { store, blobs } = this.opts.local;
    const have = await store.getVersion(model, version);
    if (have) return have;
    const record = await this.opts.source.version(model, version);
    if (record.model !== model || record.version !== version) throw new AppError('FL_ERR_UPSTREAM_BAD_RESPONSE', { model, version, why: 'the record names another version' });
    const fetched: Uint8Array[] = [];
    for (const a of record.artifacts) {
      if (await blobs.has(a.sha256)) continue;
      const bytes = await this.opts.source.artifact(record, a.name);
      const got = sha256Hex(bytes);
      if (got !== a.sha256 || bytes.byteLength !== a.size) {
        throw new AppError('FL_ERR_UPSTREAM_CORRUPT', { model, version, artifact: a.name, expected: a.sha256, got, size: bytes.byteLength, upstream: this.opts.source.describe });
      }
      fetched.push(bytes);
    }
    for (const bytes of fetched) await blobs.put(bytes);
    const latest = (await store.getModel(model)) ? await store.getAlias(model, 'latest') : null;
    await store.putVersion(record, BY);
    // putVersion moves `latest`; the upstream's aliases decide where it points, so put it back.
    if (latest) await store.setAlias(model, 'latest', latest.version, BY);
    return record;
  }

  private async syncDeployments(): Promise<boolean> {
    const { store } = this.opts.local;
    const upstream = await this.opts.source.deployments();
    const local = new Map((await store.listDeployments()).map((d) => [d.name, d]));
    let changed = false;
    for (const d of upstream) {
      for (const t of targetsOf(d.routing)) if (NUMERIC.test(t.ref)) await this.ensureVersion(d.model, Number(t.ref));
      const mine = local.get(d.name);
      local.delete(d.name);
      if (!mine) {
        await store.createDeployment(d);
        changed = true;
      } else if (!sameDeployment(mine, d)) {
        const { name: _n, createdAt: _c, updatedAt: _u, ...patch } = d;
        await store.updateDeployment(d.name, { ...patch, state: d.state });
        changed = true;
      }
    }
    for (const name of local.keys()) {
      await store.deleteDeployment(name);
      changed = true;
    }
    if (changed) this.opts.onDeploymentsChanged();
    return changed;
  }

  private async noteSynced(): Promise<void> {
    const synced: Record<string, number> = {};
    for (const m of await this.opts.local.store.listModels()) for (const a of await this.opts.local.store.listAliases(m.name)) synced[`${m.name}@${a.alias}`] = a.version;
    this.status.synced = synced;
  }

  private async save(): Promise<void> {
    const cache = this.opts.cache;
    if (!cache) return;
    const { store, blobs } = this.opts.local;
    const versions: VersionRecord[] = [];
    const aliases: Array<{ model: string; alias: string; version: number }> = [];
    for (const m of await store.listModels()) {
      const as = await store.listAliases(m.name);
      aliases.push(...as.map((a) => ({ model: m.name, alias: a.alias, version: a.version })));
      for (const v of new Set(as.map((a) => a.version))) versions.push((await store.getVersion(m.name, v))!);
    }
    await cache.save({ savedAt: Date.now(), versions, aliases }, async (sha) => (await blobs.get(sha))!);
  }
}

function sameDeployment(a: DeploymentRecord, b: DeploymentRecord): boolean {
  const strip = ({ createdAt: _c, updatedAt: _u, state: _s, ...rest }: DeploymentRecord) => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
