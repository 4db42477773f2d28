/**
 * Requests a bandit deployment served and that still await feedback: which target (and version)
 * served each id, so that a reward is credited to it, once. Bounded: beyond `capacity` entries
 * the oldest are forgotten (their feedback then answers FL_ERR_DEPLOYMENT_UNKNOWN_REQUEST).
 */
export class FeedbackLedger {
  private readonly entries = new Map<string, { key: string; version: number }>();

  constructor(private readonly capacity: number) {}

  remember(deployment: string, requestId: string, key: string, version: number): void {
    const k = `${deployment}\u0000${requestId}`;
    this.entries.delete(k);
    this.entries.set(k, { key, version });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The entry of a served request, removed (feedback counts once); undefined when unknown. */
  take(deployment: string, requestId: string): { key: string; version: number } | undefined {
    const k = `${deployment}\u0000${requestId}`;
    const e = this.entries.get(k);
    this.entries.delete(k);
    return e;
  }

  pending(deployment: string): number {
    const prefix = `${deployment}\u0000`;
    let n = 0;
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) n++;
    return n;
  }
}
