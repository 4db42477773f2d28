import type { Principal } from '../auth/authenticator.js';
import type { UpstreamClient } from './upstream-client.js';

/**
 * Checks the bearer tokens of a replica's callers with the coordinator that issued them
 * (POST /api/v1/edge/introspect), for replicas that hold no token store. Answers are cached:
 * accepted tokens for `ttlMs` (a revocation reaches replicas within it), refused ones for
 * `negativeTtlMs`. When the coordinator cannot be reached, a token accepted before keeps working
 * until its entry is `graceMs` old; an unknown one is refused (null).
 */
export class RemoteAuthenticator {
  private readonly cache = new Map<string, { principal: Principal | null; at: number }>();

  constructor(
    private readonly client: UpstreamClient,
    private readonly opts: { ttlMs?: number; negativeTtlMs?: number; graceMs?: number; maxEntries?: number } = {},
  ) {}

  async authenticate(token: string): Promise<Principal | null> {
    const now = Date.now();
    const hit = this.cache.get(token);
    const ttl = hit?.principal ? (this.opts.ttlMs ?? 30_000) : (this.opts.negativeTtlMs ?? 5_000);
    if (hit && now - hit.at < ttl) return hit.principal;
    let principal: Principal | null;
    try {
      const r = await this.client.json<{ active: boolean; principal?: Principal }>('POST', '/api/v1/edge/introspect', { token });
      principal = r.active && r.principal ? r.principal : null;
    } catch {
      return hit?.principal && now - hit.at < (this.opts.graceMs ?? 300_000) ? hit.principal : null;
    }
    this.cache.delete(token);
    this.cache.set(token, { principal, at: now });
    if (this.cache.size > (this.opts.maxEntries ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
    return principal;
  }
}
