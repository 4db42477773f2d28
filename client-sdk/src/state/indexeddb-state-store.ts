import type { DeviceStateStore } from './device-state-store.js';

/**
 * Device state in the page's IndexedDB (one object store in database `name`), so a reloaded page
 * or a restarted browser resumes it. IndexedDB keeps binary values as they are and, unlike
 * localStorage, is not limited to a few MB of strings. Each call is one transaction.
 */
export class IndexedDbStateStore implements DeviceStateStore {
  private db: Promise<IDBDatabase> | null = null;

  constructor(readonly name = 'flotilla-device-state') {}

  /** Whether this runtime has IndexedDB (pages and workers do; Node does not). */
  static available(): boolean {
    return typeof indexedDB !== 'undefined';
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise((resolve, reject) => {
      const req = indexedDB.open(this.name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('state');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return this.db;
  }

  private async run<T>(mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction('state', mode);
      const req = op(tx.objectStore('state'));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  async get(key: string): Promise<Uint8Array | null> {
    const v = await this.run('readonly', (s) => s.get(key) as IDBRequest<ArrayBuffer | undefined>);
    return v ? new Uint8Array(v) : null;
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    // An ArrayBuffer copy: structured clone of exactly the value's bytes.
    await this.run('readwrite', (s) => s.put(value.slice().buffer, key));
  }

  async delete(key: string): Promise<void> {
    await this.run('readwrite', (s) => s.delete(key));
  }
}
