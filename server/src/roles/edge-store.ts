import { MemoryStore } from '../store/memory-store.js';
import type { PayloadRecord } from '../store/records.js';

/**
 * The local store of a serving replica or sidecar: memory, filled by the registry mirror. Sampled
 * payloads it logs are also queued in an outbox that the upstream reporter drains (bounded: the
 * oldest are dropped, and counted, while the upstream is away).
 */
export class EdgeStore extends MemoryStore {
  private outbox: PayloadRecord[] = [];
  droppedPayloads = 0;

  constructor(private readonly maxOutbox = 1000) {
    super();
  }

  override async appendPayloads(records: PayloadRecord[], capPerModel: number): Promise<void> {
    await super.appendPayloads(records, capPerModel);
    this.outbox.push(...records);
    const over = this.outbox.length - this.maxOutbox;
    if (over > 0) {
      this.outbox.splice(0, over);
      this.droppedPayloads += over;
    }
  }

  /** Takes up to `max` queued payloads, oldest first. */
  takePayloads(max: number): PayloadRecord[] {
    return this.outbox.splice(0, max);
  }

  /** Puts payloads back in front after a failed upload (still bounded). */
  returnPayloads(records: PayloadRecord[]): void {
    this.outbox.unshift(...records);
    const over = this.outbox.length - this.maxOutbox;
    if (over > 0) {
      this.outbox.splice(0, over);
      this.droppedPayloads += over;
    }
  }

  get pendingPayloads(): number {
    return this.outbox.length;
  }
}
