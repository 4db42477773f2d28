/**
 * Whether a batcher with an idle model instance should wait (up to its `maxQueueDelayMs`) for
 * more requests before running a partial batch, decided from measured throughput. Pure: time is
 * passed in. Contracts:
 *  - it starts eager (run at once), so a lone request never pays the delay;
 *  - it probes waiting for one window only after an eager window in which requests queued behind
 *    a running batch (there was concurrency for waiting to gather), at most once every
 *    `probeEvery` windows;
 *  - it keeps waiting only while the waiting window served at least `gain` times the rows per
 *    second of the last eager window, and from then on probes eager the same way, so a change of
 *    load moves it back.
 */
export type DelayMode = 'eager' | 'wait';

export interface DelayPolicyOptions {
  /** Length of one measurement window. Default 200 ms. */
  windowMs?: number;
  /** Windows between probes of the other mode. Default 10. */
  probeEvery?: number;
  /** Throughput ratio the other mode must reach to be kept. Default 1.1. */
  gain?: number;
}

export class DelayPolicy {
  private current: DelayMode = 'eager';
  /** The mode to return to after a probe. */
  private settled: DelayMode = 'eager';
  private probing = false;
  private windowStart: number | null = null;
  private rows = 0;
  private contended = false;
  private sinceProbe = 0;
  /** Rows per ms of the newest complete window of each mode. */
  private readonly rate: Record<DelayMode, number | null> = { eager: null, wait: null };
  private readonly windowMs: number;
  private readonly probeEvery: number;
  private readonly gain: number;
  /** Windows measured and mode switches, for the serving statistics. */
  switches = 0;

  constructor(o: DelayPolicyOptions = {}) {
    this.windowMs = o.windowMs ?? 200;
    this.probeEvery = o.probeEvery ?? 10;
    this.gain = o.gain ?? 1.1;
  }

  get mode(): DelayMode {
    return this.current;
  }

  /** A batch finished with `rows` rows; `queuedBehind` requests waited while it ran. */
  served(rows: number, queuedBehind: number, now: number): void {
    if (this.windowStart === null) this.windowStart = now;
    this.rows += rows;
    if (queuedBehind > 0) this.contended = true;
    const elapsed = now - this.windowStart;
    if (elapsed < this.windowMs) return;
    this.rate[this.current] = this.rows / elapsed;
    this.closeWindow();
    this.windowStart = now;
    this.rows = 0;
    this.contended = false;
  }

  /** Idle time (no batch for a while) ends the window without counting it. */
  idle(): void {
    this.windowStart = null;
    this.rows = 0;
    this.contended = false;
  }

  private closeWindow(): void {
    if (this.probing) {
      this.probing = false;
      const probe = this.rate[this.current]!;
      const base = this.rate[this.settled];
      if (base !== null && probe >= base * this.gain) {
        this.settled = this.current;
        this.switches++;
      } else this.current = this.settled;
      this.sinceProbe = 0;
      return;
    }
    this.sinceProbe++;
    const other: DelayMode = this.current === 'eager' ? 'wait' : 'eager';
    // Waiting can only help when requests arrive while a batch runs.
    if (this.sinceProbe >= this.probeEvery && (other === 'eager' || this.contended)) {
      this.probing = true;
      this.current = other;
    }
  }
}
