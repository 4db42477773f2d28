import { createHash } from 'node:crypto';
import type { PayloadRecord } from '../store/records.js';
import type { Store } from '../store/store.js';

/**
 * Whether a request id is sampled at `rate`: a 32-bit hash of the id (FNV-1a over its UTF-16
 * code units, then MurmurHash3's finaliser to spread the bits) as a fraction in [0, 1) below
 * `rate`. Deterministic, so a given id is always in or always out (every node agrees). Not a
 * cryptographic hash: it runs on every request (sha256 here cost ~2% of the batched route's
 * main thread), and whether a request is logged is no secret.
 */
export function sampledId(requestId: string, rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  let h = 0x811c9dc5;
  for (let i = 0; i < requestId.length; i++) h = Math.imul(h ^ requestId.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32 < rate;
}

/** A uniform fraction in [0, 1) from a string (sticky routing, shadow sampling). */
export function hashFraction(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0) / 2 ** 32;
}

export interface PayloadLogOptions {
  /** Fraction of request ids logged. Default 0.01. */
  rate: number;
  /** Newest records kept per model. Default 1000. */
  capPerModel: number;
  /** Buffered records are written at least this often. Default 250 ms. */
  flushMs?: number;
  /** Records buffered beyond this are dropped (and counted) while the store is slow. Default 5000. */
  maxBuffered?: number;
  onError?: (err: unknown) => void;
}

/**
 * Sampled request/response log, written through the Store in batches off the request path.
 * Contracts: `offer` never throws and never waits for the store; the store keeps at most
 * `capPerModel` records per model (appendPayloads trims); `flush` writes everything buffered.
 */
export class PayloadLog {
  private buffer: PayloadRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  dropped = 0;
  written = 0;

  constructor(
    private readonly store: Store,
    readonly options: PayloadLogOptions,
  ) {}

  sampled(requestId: string): boolean {
    return sampledId(requestId, this.options.rate);
  }

  /** Queue a record built only when `requestId` is sampled; true when it was. */
  offer(requestId: string, build: () => PayloadRecord): boolean {
    if (!this.sampled(requestId)) return false;
    if (this.buffer.length >= (this.options.maxBuffered ?? 5000)) {
      this.dropped++;
      return true;
    }
    this.buffer.push(build());
    if (this.buffer.length >= 200) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.options.flushMs ?? 250);
      this.timer.unref?.();
    }
    return true;
  }

  /** Write what is buffered (after any write in progress). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length === 0) return this.writing;
    this.writing = this.writing.then(async () => {
      try {
        await this.store.appendPayloads(batch, this.options.capPerModel);
        this.written += batch.length;
      } catch (err) {
        this.dropped += batch.length;
        this.options.onError?.(err);
      }
    });
    return this.writing;
  }
}
