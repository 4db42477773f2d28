/**
 * Polls `fn` every 100 ms until it returns a truthy value and returns it; an error thrown by `fn`
 * counts as "not yet" (the last one is named if time runs out). Throws naming `what` after
 * `timeoutMs`. For state that has no event to wait on (tests wait for events, never for fixed sleeps).
 */
export async function until<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
