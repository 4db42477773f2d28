import { AppError } from '../errors.js';
import type { BlobStore } from './blob-store.js';
import type { Store } from './store.js';

/** Errors that mean the file system is out of space (or quota): fs ENOSPC/EDQUOT, SQLite's SQLITE_FULL. */
export function isOutOfSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/**
 * Whether storage can take writes, for /readyz. Any storage call that fails for lack of space
 * marks it full (the call answers FL_ERR_STORE_FULL, 503); a blob write that succeeds, or the
 * `probe` (a small fsynced write that /readyz attempts while storage is full, so readiness comes
 * back once space is freed even when no traffic arrives), marks it writable again.
 */
export class StorageHealth {
  private fullSince: number | null = null;

  constructor(private readonly probe?: () => Promise<void>) {}

  get full(): boolean {
    return this.fullSince !== null;
  }

  /** The error to rethrow for `err`: FL_ERR_STORE_FULL (and storage marked full) when it is out of space, else `err`. */
  failed(err: unknown): unknown {
    if (!isOutOfSpace(err)) return err;
    this.fullSince ??= Date.now();
    return new AppError('FL_ERR_STORE_FULL', { why: (err as { code: string }).code, since: this.fullSince });
  }

  recovered(): void {
    this.fullSince = null;
  }

  /** True unless storage is full and a probe write still fails (or there is no probe). */
  async writable(): Promise<boolean> {
    if (!this.full) return true;
    if (!this.probe) return false;
    try {
      await this.probe();
      this.recovered();
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * `target` with every method guarded: an out-of-space failure (thrown or rejected) becomes
 * FL_ERR_STORE_FULL and marks `health` full; a successful call of a method in `clearsOn` marks it
 * writable again. Other properties and errors pass through unchanged.
 */
function guard<T extends object>(target: T, health: StorageHealth, clearsOn: readonly string[]): T {
  return new Proxy(target, {
    get(t, prop) {
      const v = Reflect.get(t, prop, t) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        let out: unknown;
        try {
          out = (v as (...a: unknown[]) => unknown).apply(t, args);
        } catch (err) {
          throw health.failed(err);
        }
        if (!(out instanceof Promise)) return out;
        return out.then(
          (x) => {
            if (clearsOn.includes(String(prop))) health.recovered();
            return x;
          },
          (err) => {
            throw health.failed(err);
          },
        );
      };
    },
  });
}

/**
 * Embedded storage (SQLite and blob files on a local file system) guarded by one StorageHealth,
 * probed with the blob store's probeWrite. Other storage (memory, MongoDB + GridFS: no local
 * disk to fill) is returned as it is, with a health that never turns full; guarding costs a
 * promise hop per call, so it is paid only where it can help.
 */
export function guardStorage(store: Store, blobs: BlobStore, local: boolean): { store: Store; blobs: BlobStore; health: StorageHealth } {
  if (!local) return { store, blobs, health: new StorageHealth() };
  const health = new StorageHealth(blobs.probeWrite ? () => blobs.probeWrite!() : undefined);
  return { store: guard(store, health, []), blobs: guard(blobs, health, ['put', 'probeWrite']), health };
}
