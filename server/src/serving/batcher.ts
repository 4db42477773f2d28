import { AppError } from '../errors.js';
import type { BatchingConfig } from '../store/records.js';
import { DelayPolicy, type DelayMode } from './delay-policy.js';

export type { BatchingConfig };

export const DEFAULT_BATCHING: BatchingConfig = { maxBatchSize: 32, maxQueueDelayMs: 5, maxQueueSize: 1024, timeoutMs: 10_000, delay: 'adaptive', instances: 0 };

/** Runs one batch: `rows` rows of `input` (row-major) in, `rows` rows of output out. */
export type BatchRunner = (input: Float32Array, rows: number) => Float32Array | Promise<Float32Array>;

export interface BatchResult {
  /** This request's rows of the output. */
  output: Float32Array;
  queueMs: number;
  computeMs: number;
  /** Rows in the batch this request ran in. */
  batchRows: number;
}

interface Pending {
  input: Float32Array;
  rows: number;
  enqueuedAt: number;
  /** When it fails with FL_ERR_SERVING_TIMEOUT if still queued (Infinity: never). */
  deadline: number;
  resolve(r: BatchResult): void;
  reject(e: unknown): void;
}

export interface BatcherStats {
  queued: number;
  batches: number;
  rows: number;
  rejectedFull: number;
  timedOut: number;
  /** rows per batch -> number of batches */
  batchSizes: Record<string, number>;
  /** Batches that may run at once (model instances). */
  parallel: number;
  /** Whether a partial batch now waits for more requests ('wait') or runs at once ('eager'). */
  delayMode: DelayMode;
  /** One-window probes of the other mode the adaptive delay policy has made (delay-policy.ts). */
  delayProbes: number;
}

/**
 * Dynamic batcher of one loaded model version, over `parallel` model instances. Contracts:
 *  - a batch starts when an instance is idle: at once with what is queued (`delay: 'adaptive'`,
 *    while DelayPolicy finds that waiting does not raise throughput), or once its rows reach
 *    `maxBatchSize` or its oldest request waited `maxQueueDelayMs` (`delay: 'fixed'`, as Triton's
 *    dynamic batcher, and 'adaptive' while waiting measurably helps); while every instance is busy
 *    requests accumulate and the next free instance takes up to `maxBatchSize` rows of them;
 *  - batches are taken in arrival order; a request larger than maxBatchSize runs alone;
 *  - the queue holds at most `maxQueueSize` requests: beyond that `submit` rejects at once with
 *    FL_ERR_SERVING_OVERLOADED (429), so overload never turns into a hang;
 *  - a request still queued after `timeoutMs` rejects with FL_ERR_SERVING_TIMEOUT and never runs;
 *  - after `close()` new requests reject with FL_ERR_SERVING_UNAVAILABLE; queued ones still run,
 *    then `onDrained` fires (the model cache disposes the model there);
 *  - nothing here references a request once it is answered or rejected (its input is garbage).
 */
export class Batcher {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private running = 0;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  /** One timer for all queued requests' deadlines (not one per request: this runs per request). */
  private expiry: NodeJS.Timeout | null = null;
  private expiryAt = Infinity;
  private closed = false;
  private onDrained: (() => void) | null = null;
  private readonly sizes = new Map<number, number>();
  private counters = { batches: 0, rows: 0, rejectedFull: 0, timedOut: 0 };
  private readonly policy = new DelayPolicy();
  private lastDone = 0;

  constructor(
    private readonly run: BatchRunner,
    private readonly rowWidth: number,
    private readonly outWidth: number,
    private config: BatchingConfig = DEFAULT_BATCHING,
    /** Batches that may run at once (the model's instances). */
    private parallel = 1,
  ) {}

  get settings(): BatchingConfig {
    return { ...this.config };
  }

  /** New limits apply from the next batch. */
  configure(config: BatchingConfig, parallel = this.parallel): void {
    this.config = { ...config };
    this.parallel = parallel;
    this.schedule();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get queued(): number {
    return this.queue.length;
  }

  submit(input: Float32Array, rows: number): Promise<BatchResult> {
    if (this.closed) return Promise.reject(new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'model unloaded' }));
    if (this.queued >= this.config.maxQueueSize) {
      this.counters.rejectedFull++;
      return Promise.reject(new AppError('FL_ERR_SERVING_OVERLOADED', { queued: this.queued, maxQueueSize: this.config.maxQueueSize }));
    }
    return new Promise<BatchResult>((resolve, reject) => {
      const now = performance.now();
      const p: Pending = { input, rows, enqueuedAt: now, deadline: this.config.timeoutMs > 0 ? now + this.config.timeoutMs : Infinity, resolve, reject };
      this.queue.push(p);
      this.queuedRows += rows;
      if (p.deadline < this.expiryAt) this.armExpiry();
      this.schedule();
    });
  }

  stats(): BatcherStats {
    return {
      queued: this.queued,
      ...this.counters,
      batchSizes: Object.fromEntries([...this.sizes].sort((a, b) => a[0] - b[0])),
      parallel: this.parallel,
      delayMode: this.waits() ? 'wait' : 'eager',
      delayProbes: this.policy.probes,
    };
  }

  /** Stop accepting; `drained` runs once the queue is empty and no batch runs. */
  close(drained?: () => void): void {
    this.closed = true;
    this.onDrained = drained ?? null;
    this.maybeDrained();
  }

  private maybeDrained(): void {
    if (this.closed && this.running === 0 && this.queued === 0 && this.onDrained) {
      const f = this.onDrained;
      this.onDrained = null;
      if (this.timer) clearTimeout(this.timer);
      if (this.expiry) clearTimeout(this.expiry);
      this.expiry = null;
      this.expiryAt = Infinity;
      f();
    }
  }

  /** Arm the expiry timer for the earliest deadline in the queue (none when nothing can expire). */
  private armExpiry(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
    let first = Infinity;
    for (const p of this.queue) if (p.deadline < first) first = p.deadline;
    this.expiryAt = first;
    if (first === Infinity) return;
    this.expiry = setTimeout(() => this.expire(), Math.max(0, first - performance.now()));
    this.expiry.unref?.();
  }

  /** Fail every queued request past its deadline; they never run. */
  private expire(): void {
    this.expiry = null;
    this.expiryAt = Infinity;
    const now = performance.now();
    const late = this.queue.filter((p) => p.deadline <= now);
    if (late.length > 0) {
      this.queue = this.queue.filter((p) => p.deadline > now);
      for (const p of late) {
        this.queuedRows -= p.rows;
        this.counters.timedOut++;
        p.reject(new AppError('FL_ERR_SERVING_TIMEOUT', { waitedMs: Math.round(now - p.enqueuedAt), timeoutMs: Math.round(p.deadline - p.enqueuedAt) }));
      }
    }
    this.armExpiry();
    this.maybeDrained();
  }

  private waits(): boolean {
    return this.config.delay === 'fixed' || this.policy.mode === 'wait';
  }

  private schedule(): void {
    if (this.running >= this.parallel || this.scheduled || this.queued === 0) return;
    const waited = performance.now() - this.queue[0].enqueuedAt;
    const full = this.queuedRows >= this.config.maxBatchSize;
    if (full || this.closed || !this.waits() || waited >= this.config.maxQueueDelayMs) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      // setImmediate, not a direct call: requests already read from sockets join this batch.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.runBatch();
        this.schedule();
      });
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, this.config.maxQueueDelayMs - waited);
    }
  }

  /** Remove the next batch from the queue (so the queue holds no reference to it once answered). */
  private take(): Pending[] {
    let n = 0;
    let rows = 0;
    while (n < this.queue.length) {
      const r = this.queue[n].rows;
      if (n > 0 && rows + r > this.config.maxBatchSize) break;
      rows += r;
      n++;
    }
    this.queuedRows -= rows;
    return this.queue.splice(0, n);
  }

  private async runBatch(): Promise<void> {
    if (this.running >= this.parallel || this.queued === 0) return;
    if (this.running === 0 && this.counters.batches > 0 && performance.now() - this.lastDone > 1000) this.policy.idle();
    this.running++;
    const batch = this.take();
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    const started = performance.now();
    try {
      let input: Float32Array;
      if (batch.length === 1) input = batch[0].input;
      else {
        input = new Float32Array(rows * this.rowWidth);
        let off = 0;
        for (const p of batch) {
          input.set(p.input, off);
          off += p.input.length;
        }
      }
      const out = await this.run(input, rows);
      const now = performance.now();
      const computeMs = now - started;
      this.counters.batches++;
      this.counters.rows += rows;
      this.sizes.set(rows, (this.sizes.get(rows) ?? 0) + 1);
      // With maxBatchSize 1 (unbatched) waiting could gather nothing: the policy has nothing to learn.
      if (this.config.maxBatchSize > 1) this.policy.served(rows, this.queued, now);
      this.lastDone = now;
      let off = 0;
      for (const p of batch) {
        const n = p.rows * this.outWidth;
        p.resolve({ output: out.subarray(off, off + n), queueMs: started - p.enqueuedAt, computeMs, batchRows: rows });
        off += n;
      }
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.running--;
      this.maybeDrained();
      this.schedule();
    }
  }
}
