/**
 * HTTP to a coordinator the simulator does not own (--url), riding out its restarts: a request
 * that gets no HTTP answer (connection refused or reset, DNS, a socket closed mid-response) or a
 * 502/503/504 (a proxy or a store that is not ready yet) is retried with exponential backoff,
 * capped at `maxDelayMs`, for at most `maxWaitMs` in a row; each wait is announced through
 * `onWait` (the CLI writes it to stderr). Any other answer, errors included, is returned as is.
 * Requests are resent whole, so callers must make non-idempotent ones safe to repeat (see
 * RemoteCoordinator).
 */
export interface RetryOptions {
  /** Longest time the coordinator may stay unreachable before the request fails (default 300 s). */
  maxWaitMs?: number;
  /** First delay between attempts (default 250 ms), doubled up to maxDelayMs (default 5 s). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** One line per wait, and one when the coordinator answers again. */
  onWait?(message: string): void;
}

const RETRY_STATUS = new Set([502, 503, 504]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Why a fetch got no HTTP answer, or null when the error is something else (a bug, an abort). */
export function unreachableReason(err: unknown): string | null {
  if (!(err instanceof TypeError) || err.message !== 'fetch failed') return null;
  const cause = (err as TypeError & { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? 'fetch failed';
}

export async function fetchWithRetry(url: URL, init: RequestInit, o: RetryOptions = {}): Promise<Response> {
  const maxWaitMs = o.maxWaitMs ?? 300_000;
  const maxDelayMs = o.maxDelayMs ?? 5_000;
  let delay = o.initialDelayMs ?? 250;
  let since: number | null = null;
  for (;;) {
    let reason: string;
    try {
      const res = await fetch(url, init);
      if (!RETRY_STATUS.has(res.status)) {
        if (since !== null) o.onWait?.(`flotilla-sim: coordinator ${url.origin} reachable again after ${((Date.now() - since) / 1000).toFixed(1)} s`);
        return res;
      }
      reason = `HTTP ${res.status}`;
      await res.body?.cancel();
    } catch (err) {
      const why = unreachableReason(err);
      if (why === null) throw err;
      reason = why;
    }
    since ??= Date.now();
    const waited = Date.now() - since;
    if (waited >= maxWaitMs) {
      throw new Error(`coordinator ${url.origin} unreachable for ${(waited / 1000).toFixed(0)} s (${reason}); giving up`);
    }
    const pause = Math.min(delay, maxWaitMs - waited);
    o.onWait?.(
      `flotilla-sim: coordinator ${url.origin} unreachable (${reason}); retrying in ${(pause / 1000).toFixed(1)} s ` +
        `(waiting ${(waited / 1000).toFixed(0)} s of at most ${(maxWaitMs / 1000).toFixed(0)} s)`,
    );
    await sleep(pause);
    delay = Math.min(delay * 2, maxDelayMs);
  }
}
