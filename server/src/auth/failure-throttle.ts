/**
 * THE throttle of failed authentication, shared by the REST guards (server/src/http/auth.ts) and
 * the device handshake (server/src/coordinator/handshake.ts): per client address, at most `max`
 * failures in a fixed window of `windowMs`; past that, further failures from the address are
 * answered FL_ERR_AUTH_THROTTLED until the window ends.
 *
 * Contracts:
 * - Only failures count, and only failures are refused: callers check the credential first and
 *   call `fail` only for a credential that failed, so a valid credential is never refused
 *   because of other callers' failures from the same address (a NAT, a proxy).
 * - Memory is bounded: at most `maxAddresses` windows are kept; the oldest are dropped first.
 * - Time comes from `now` so tests can drive it.
 */
export interface FailureThrottleOptions {
  max: number;
  windowMs: number;
  maxAddresses?: number;
  now?: () => number;
}

interface Window {
  start: number;
  failures: number;
}

export class FailureThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly now: () => number;
  private readonly maxAddresses: number;

  constructor(private readonly opts: FailureThrottleOptions) {
    this.now = opts.now ?? Date.now;
    this.maxAddresses = opts.maxAddresses ?? 100_000;
  }

  /**
   * Count one failed attempt from `address`. Returns null while the address is within its budget
   * (this failure included), else the seconds until its window ends.
   */
  fail(address: string): { retryAfterSeconds: number } | null {
    const w = this.current(address);
    w.failures++;
    return w.failures > this.opts.max ? { retryAfterSeconds: this.retryAfter(w) } : null;
  }

  get size(): number {
    return this.windows.size;
  }

  private retryAfter(w: Window): number {
    return Math.max(1, Math.ceil((w.start + this.opts.windowMs - this.now()) / 1000));
  }

  private current(address: string): Window {
    const now = this.now();
    let w = this.windows.get(address);
    if (w && now - w.start >= this.opts.windowMs) {
      this.windows.delete(address);
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= this.maxAddresses) this.evict(now);
      w = { start: now, failures: 0 };
      this.windows.set(address, w);
    }
    return w;
  }

  /** Drop expired windows; if none expired, the oldest one (Map order is insertion order). */
  private evict(now: number): void {
    for (const [a, w] of this.windows) if (now - w.start >= this.opts.windowMs) this.windows.delete(a);
    if (this.windows.size >= this.maxAddresses) this.windows.delete(this.windows.keys().next().value!);
  }
}
