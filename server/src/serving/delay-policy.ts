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
 *    load moves it back;
 *  - each probe of waiting that lost doubles the windows before the next one (up to
 *    `maxProbeEvery`): a probe costs its window's requests up to the delay, and under a steady
 *    load that waiting did not help, probing again soon only adds that latency (it showed in the
 *    p99 at 16 clients, docs/serving.md). The interval returns to `probeEvery` when the load
 *    changes: an eager window whose rows per second differ from those when the backoff began by
 *    `loadChange` times or more, or an idle gap;
 *  - a waiting window whose batches averaged under `loneRows` rows (waiting gathered next to
 *    nothing: the load fell to one or two clients) moves it back to eager at once, without a probe;
 *  - an idle gap (`idle()`) moves it back to eager, so the first request after one never pays the
 *    delay.
 */
export type DelayMode = 'eager' | 'wait';

export interface DelayPolicyOptions {
  /** Length of one measurement window. Default 200 ms. */
  windowMs?: number;
  /** Windows between probes of the other mode. Default 10. */
  probeEvery?: number;
  /** Throughput ratio the other mode must reach to be kept. Default 1.1. */
  gain?: number;
  /** Mean rows per batch under which a waiting window counts as having gathered nothing. Default 1.5. */
  loneRows?: number;
  /** Most windows between probes of waiting after probes that lost. Default 160 (32 s of 200 ms windows). */
  maxProbeEvery?: number;
  /** Change of the eager rows per second (either way) that counts as a new load and ends the backoff. Default 1.5. */
  loadChange?: number;
}

export class DelayPolicy {
  private current: DelayMode = 'eager';
  /** The mode to return to after a probe. */
  private settled: DelayMode = 'eager';
  private probing = false;
  private windowStart: number | null = null;
  private rows = 0;
  private batches = 0;
  private contended = false;
  private sinceProbe = 0;
  /** Rows per ms of the newest complete window of each mode. */
  private readonly rate: Record<DelayMode, number | null> = { eager: null, wait: null };
  private readonly windowMs: number;
  private readonly probeEvery: number;
  private readonly gain: number;
  private readonly loneRows: number;
  private readonly maxProbeEvery: number;
  private readonly loadChange: number;
  /** Windows before the next probe of waiting (grows while waiting keeps losing). */
  private waitProbeEvery: number;
  /** Eager rows per ms when the backoff began (null: no backoff). */
  private backoffRate: number | null = null;
  /** Mode switches, for the serving statistics. */
  switches = 0;
  /** Probes started (of either mode), for the serving statistics and tests. */
  probes = 0;

  constructor(o: DelayPolicyOptions = {}) {
    this.windowMs = o.windowMs ?? 200;
    this.probeEvery = o.probeEvery ?? 10;
    this.gain = o.gain ?? 1.1;
    this.loneRows = o.loneRows ?? 1.5;
    this.maxProbeEvery = Math.max(this.probeEvery, o.maxProbeEvery ?? 160);
    this.loadChange = o.loadChange ?? 1.5;
    this.waitProbeEvery = this.probeEvery;
  }

  get mode(): DelayMode {
    return this.current;
  }

  /** A batch finished with `rows` rows; `queuedBehind` requests waited while it ran. */
  served(rows: number, queuedBehind: number, now: number): void {
    if (this.windowStart === null) this.windowStart = now;
    this.rows += rows;
    this.batches++;
    if (queuedBehind > 0) this.contended = true;
    const elapsed = now - this.windowStart;
    if (elapsed < this.windowMs) return;
    this.rate[this.current] = this.rows / elapsed;
    this.closeWindow();
    this.resetWindow(now);
  }

  /** Idle time (no batch for a while) ends the window without counting it and returns to eager. */
  idle(): void {
    this.resetWindow(null);
    if (this.settled === 'wait' || this.current === 'wait') this.switches++;
    this.current = this.settled = 'eager';
    this.probing = false;
    this.sinceProbe = 0;
    this.endBackoff();
  }

  /** A probe of waiting lost: probe it half as often (until the load changes). */
  private backOff(): void {
    this.backoffRate ??= this.rate.eager;
    this.waitProbeEvery = Math.min(this.maxProbeEvery, this.waitProbeEvery * 2);
  }

  private endBackoff(): void {
    this.waitProbeEvery = this.probeEvery;
    this.backoffRate = null;
  }

  private resetWindow(start: number | null): void {
    this.windowStart = start;
    this.rows = 0;
    this.batches = 0;
    this.contended = false;
  }

  private closeWindow(): void {
    if (this.current === 'wait' && this.rows < this.loneRows * this.batches) {
      // Waiting gathered next to nothing: whatever the rates say, the delay is only latency.
      if (this.probing) this.backOff();
      if (this.settled === 'wait') this.switches++;
      this.current = this.settled = 'eager';
      this.probing = false;
      this.sinceProbe = 0;
      return;
    }
    if (this.probing) {
      this.probing = false;
      const probe = this.rate[this.current]!;
      const base = this.rate[this.settled];
      const won = base !== null && probe >= base * this.gain;
      if (this.current === 'wait') {
        if (won) this.endBackoff();
        else this.backOff();
      }
      if (won) {
        this.settled = this.current;
        this.switches++;
      } else this.current = this.settled;
      this.sinceProbe = 0;
      return;
    }
    this.sinceProbe++;
    if (this.current === 'eager' && this.backoffRate !== null) {
      const r = this.rate.eager! / this.backoffRate;
      if (r >= this.loadChange || r <= 1 / this.loadChange) this.endBackoff();
    }
    const other: DelayMode = this.current === 'eager' ? 'wait' : 'eager';
    // Waiting can only help when requests arrive while a batch runs.
    if (this.sinceProbe >= (other === 'wait' ? this.waitProbeEvery : this.probeEvery) && (other === 'eager' || this.contended)) {
      this.probing = true;
      this.probes++;
      this.current = other;
    }
  }
}
