/**
 * Bounds how many device uploads are in flight at once, so that a round of N devices finishing
 * together costs O(slots x update) memory in the transport, not O(N x update). Grants are FIFO.
 * Contracts: `acquire` resolves once the device holds a slot (immediately when one is free);
 * a device holds at most one slot; `release` (after its report, on disconnect, or when the holder
 * outstays `holdMs`) passes the slot to the next waiter; `clear` rejects every waiter.
 */
export class UploadGate {
  private readonly holders = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly waiting: Array<{ id: string; grant: () => void; reject: (e: Error) => void }> = [];

  constructor(
    private readonly slots: number,
    private readonly holdMs: number,
  ) {}

  get inFlight(): number {
    return this.holders.size;
  }

  get queued(): number {
    return this.waiting.length;
  }

  holds(id: string): boolean {
    return this.holders.has(id);
  }

  acquire(id: string): Promise<void> {
    if (this.holders.has(id)) return Promise.resolve();
    if (this.holders.size < this.slots) {
      this.take(id);
      return Promise.resolve();
    }
    return new Promise((grant, reject) => this.waiting.push({ id, grant, reject }));
  }

  release(id: string): void {
    const t = this.holders.get(id);
    if (t) {
      clearTimeout(t);
      this.holders.delete(id);
    } else {
      const i = this.waiting.findIndex((w) => w.id === id);
      if (i >= 0) this.waiting.splice(i, 1)[0].reject(new Error('released while waiting'));
      return;
    }
    while (this.holders.size < this.slots && this.waiting.length) {
      const w = this.waiting.shift()!;
      this.take(w.id);
      w.grant();
    }
  }

  clear(reason: Error): void {
    for (const t of this.holders.values()) clearTimeout(t);
    this.holders.clear();
    for (const w of this.waiting.splice(0)) w.reject(reason);
  }

  private take(id: string): void {
    const t = setTimeout(() => this.release(id), this.holdMs);
    t.unref?.();
    this.holders.set(id, t);
  }
}
