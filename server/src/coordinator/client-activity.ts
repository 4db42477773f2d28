import type { ClientRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { CoordinatorLogger } from './deps.js';
import { LocalEnrolmentQuota, type EnrolmentQuota } from './enrolment-quota.js';

/**
 * Device bookkeeping (last seen, rounds joined, reports accepted/rejected) written behind: the
 * coordinator updates records in memory on every hello and report, and dirty records reach the
 * store in one batch every `flushMs`. A 10,000-device connect storm or a 1,000-report round then
 * costs a few store transactions instead of one durable write per message.
 *
 * Contracts: this is the only writer of client records while the coordinator runs; `revoke` is
 * written through at once (security state is never deferred); a crash loses at most `flushMs` of
 * activity counters, never a revocation; `close` flushes. `enrol` bounds the device ids one
 * credential creates; `sweep` deletes records of devices long gone (docs/api.md, "Devices").
 */
export class ClientActivity {
  private readonly cache = new Map<string, ClientRecord>();
  /** Device ids enrolled per credential ('' for the bootstrap token): this process's count, or the cluster's (useQuota). */
  private quota: EnrolmentQuota = new LocalEnrolmentQuota();
  private readonly dirty = new Set<string>();
  private readonly timer: ReturnType<typeof setInterval>;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly logger: CoordinatorLogger,
    flushMs = 1000,
  ) {
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  async get(id: string): Promise<ClientRecord | null> {
    const hit = this.cache.get(id);
    if (hit) return { ...hit };
    const c = await this.store.getClient(id);
    if (c && !this.cache.has(id)) this.cache.set(id, c);
    return c ? { ...(this.cache.get(id) ?? c) } : null;
  }

  private async update(id: string, taskId: string | null, change: (c: ClientRecord) => void): Promise<ClientRecord | null> {
    let c = this.cache.get(id) ?? (await this.store.getClient(id));
    if (!c) {
      if (taskId === null) return null;
      const now = Date.now();
      c = { id, taskId, firstSeen: now, lastSeen: now, roundsJoined: 0, reportsAccepted: 0, reportsRejected: 0, revoked: false };
    }
    c = this.cache.get(id) ?? c; // another update may have loaded it meanwhile
    change(c);
    this.cache.set(id, c);
    this.dirty.add(id);
    return { ...c };
  }

  /**
   * A device presented `tokenId` (null: the bootstrap device token) for `taskId` in its handshake.
   * Atomically (no await between the check and the change): a revoked device is refused; a device
   * id already bound to another credential is refused; otherwise the id is bound to this
   * credential (on first use) and its record moves to `taskId`.
   */
  async bind(id: string, taskId: string, tokenId: string | null): Promise<'ok' | 'revoked' | 'bound'> {
    let verdict: 'ok' | 'revoked' | 'bound' = 'ok';
    await this.update(id, taskId, (c) => {
      if (c.revoked) verdict = 'revoked';
      else if (c.tokenId !== undefined && c.tokenId !== tokenId) verdict = 'bound';
      if (verdict !== 'ok') return;
      c.tokenId = tokenId;
      c.taskId = taskId;
      c.lastSeen = Date.now();
    });
    return verdict;
  }

  /** Count enrolments with `quota` instead (cluster mode: one count across nodes); call before any hello. */
  useQuota(quota: EnrolmentQuota): void {
    this.quota = quota;
  }

  /**
   * Enrol a device id presented with `tokenId` (null: the bootstrap device token): true when the id
   * has a record already or one was created for it, bound to the credential; false when the
   * credential has `cap` device ids already (EnrolmentQuota, which counts each id once, so
   * concurrent hellos of one new id take one slot between them). No await separates the quota's
   * answer from the new record.
   */
  async enrol(id: string, taskId: string, tokenId: string | null, cap: number): Promise<boolean> {
    if (await this.get(id)) return true;
    if (!(await this.quota.take(tokenId ?? '', id, cap, () => this.store.countClientsByToken(tokenId)))) return false;
    if (this.cache.has(id)) return true; // enrolled by a concurrent hello, or its record was read meanwhile: kept as is
    const now = Date.now();
    this.cache.set(id, { id, taskId, firstSeen: now, lastSeen: now, roundsJoined: 0, reportsAccepted: 0, reportsRejected: 0, revoked: false, tokenId });
    this.dirty.add(id);
    return true;
  }

  /**
   * Delete the records of devices last seen before `cutoff`, except revoked ones and those `live`
   * says are connected (their record is refreshed instead). Dirty records are flushed first, so
   * activity not yet written counts. Returns the ids deleted. Per-credential counts are recounted
   * from the store on next use; a device enrolled while a sweep runs may be missed by that recount
   * (the cap is an abuse bound, not an exact quota).
   */
  async sweep(cutoff: number, live: (id: string) => boolean): Promise<string[]> {
    await this.flush();
    const gone: string[] = [];
    for (const id of await this.store.deleteClientsSeenBefore(cutoff)) {
      const c = this.cache.get(id);
      const connected = live(id);
      if (c && (connected || c.lastSeen >= cutoff)) {
        if (connected) c.lastSeen = Math.max(c.lastSeen, Date.now());
        this.dirty.add(id); // seen meanwhile: written back at the next flush
        continue;
      }
      this.cache.delete(id);
      this.dirty.delete(id);
      gone.push(id);
    }
    if (gone.length > 0) await this.quota.recount().catch((err) => this.logger.warn({ err: String(err) }, 'enrolment counts not reset after a sweep; they are recounted when they expire'));
    return gone;
  }

  async countReport(id: string, accepted: boolean): Promise<void> {
    await this.update(id, null, (c) => {
      if (accepted) {
        c.reportsAccepted++;
        c.roundsJoined++;
      } else c.reportsRejected++;
    });
  }

  /** Mark revoked and write it through now. Returns null for an unknown device. */
  async revoke(id: string): Promise<ClientRecord | null> {
    const c = await this.update(id, null, (x) => {
      x.revoked = true;
    });
    if (c) await this.flush();
    return c;
  }

  /** Write every dirty record in one batch (serialised with any flush in progress). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.dirty.size === 0) return;
      const batch = [...this.dirty].map((id) => ({ ...this.cache.get(id)! }));
      this.dirty.clear();
      try {
        await this.store.upsertClients(batch);
      } catch (err) {
        for (const c of batch) this.dirty.add(c.id);
        this.logger.warn({ err, clients: batch.length }, 'client activity flush failed; will retry');
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
