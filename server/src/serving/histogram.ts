/**
 * Latency histogram with log-spaced buckets (ratio 1.04 from 1 µs; about 2% relative error),
 * O(1) record and constant memory, as HdrHistogram does with coarser precision. Values are
 * milliseconds. Percentiles answer the geometric middle of the bucket holding the rank, clamped
 * to the observed min and max.
 */
const MIN_MS = 0.001;
const RATIO = 1.04;
const LOG_RATIO = Math.log(RATIO);
const BUCKETS = Math.ceil(Math.log(600_000 / MIN_MS) / LOG_RATIO) + 2; // up to 10 minutes

export interface LatencySummary {
  count: number;
  mean: number;
  min: number;
  max: number;
  p50: number;
  p95: number;
  p99: number;
}

export class Histogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  record(ms: number): void {
    if (!Number.isFinite(ms)) return;
    const v = Math.max(ms, 0);
    const i = v <= MIN_MS ? 0 : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(v / MIN_MS) / LOG_RATIO));
    this.counts[i]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The q-quantile (0..1); 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const mid = i === 0 ? MIN_MS : MIN_MS * Math.pow(RATIO, i - 0.5);
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  summary(): LatencySummary {
    const r = (x: number) => Math.round(x * 1000) / 1000;
    if (this.count === 0) return { count: 0, mean: 0, min: 0, max: 0, p50: 0, p95: 0, p99: 0 };
    return {
      count: this.count,
      mean: r(this.sum / this.count),
      min: r(this.min),
      max: r(this.max),
      p50: r(this.quantile(0.5)),
      p95: r(this.quantile(0.95)),
      p99: r(this.quantile(0.99)),
    };
  }
}

/** Queue, compute and total time of served requests. */
export class LatencySet {
  readonly queue = new Histogram();
  readonly compute = new Histogram();
  readonly total = new Histogram();

  record(queueMs: number, computeMs: number, totalMs: number): void {
    this.queue.record(queueMs);
    this.compute.record(computeMs);
    this.total.record(totalMs);
  }

  summary(): { queue: LatencySummary; compute: LatencySummary; total: LatencySummary } {
    return { queue: this.queue.summary(), compute: this.compute.summary(), total: this.total.summary() };
  }
}

/** Events per second over a sliding window of whole seconds (default 60). */
export class RateWindow {
  private readonly slots: Float64Array;
  private readonly stamps: Float64Array;
  private readonly startedAt: number;

  constructor(
    private readonly seconds = 60,
    private readonly now: () => number = Date.now,
  ) {
    this.slots = new Float64Array(seconds);
    this.stamps = new Float64Array(seconds).fill(-1);
    this.startedAt = now();
  }

  add(n = 1): void {
    const sec = Math.floor(this.now() / 1000);
    const i = sec % this.seconds;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.slots[i] = 0;
    }
    this.slots[i] += n;
  }

  /** Mean rate over the window, or over the time since creation when that is shorter (at least 1 s). */
  perSecond(): number {
    const nowMs = this.now();
    const sec = Math.floor(nowMs / 1000);
    let total = 0;
    for (let i = 0; i < this.seconds; i++) if (this.stamps[i] > sec - this.seconds) total += this.slots[i];
    // The window is the seconds - 1 whole seconds before this one plus the part of this one gone by.
    const span = Math.max(1, Math.min(this.seconds - 1 + (nowMs % 1000) / 1000, (nowMs - this.startedAt) / 1000));
    return total / span;
  }
}
