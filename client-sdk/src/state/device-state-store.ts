/**
 * Where a device keeps state that must outlive a round and, with a persistent store, a restart of
 * the app: SCAFFOLD's client control variate, FedDyn's gradient correction, the error-feedback
 * residuals of lossy codecs (docs/strategies.md, "Per-device state"). Values are opaque bytes under
 * string keys. Implementations (memory, a directory of files in Node, IndexedDB in pages) pass one
 * shared suite (test/sdk/device-state-store.test.ts). Contract:
 *   - get returns the bytes of the last completed set for the key, or null (never partial bytes);
 *   - set replaces the value atomically; delete removes it (no error when absent);
 *   - the caller may reuse or change the array it passed to set, and owns the array get returns.
 */
export interface DeviceStateStore {
  get(key: string): Promise<Uint8Array | null>;
  set(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
}

/** State for as long as the process lives (the SDK's default in Node). */
export class MemoryStateStore implements DeviceStateStore {
  private readonly values = new Map<string, Uint8Array>();

  async get(key: string): Promise<Uint8Array | null> {
    const v = this.values.get(key);
    return v ? v.slice() : null;
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    this.values.set(key, value.slice());
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }

  /** Bytes held, over every key (for measurements). */
  get byteLength(): number {
    let n = 0;
    for (const v of this.values.values()) n += v.byteLength;
    return n;
  }
}
