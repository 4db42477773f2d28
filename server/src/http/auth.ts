import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth/authenticator.js';
import type { FailureThrottle } from '../auth/failure-throttle.js';
import { AppError } from '../errors.js';
import type { TokenRole } from '../store/records.js';

export type Role = TokenRole;
export type { Principal };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `requireRole` once the bearer token is accepted. */
    principal: Principal | null;
  }
}

/** What route plugins need to check credentials (app.ts passes the Authenticator plus the throttle). */
export interface AuthConfig {
  authenticate(token: string): Promise<Principal | null>;
  /** Failed authentications per client address (`request.ip`, which honours trustProxy); shared with the device handshake. */
  throttle?: FailureThrottle;
}

/**
 * Routes that may answer without a token (docs/api.md lists them; the route-table test enforces
 * that every other route needs one). `/metrics` joins them only with `publicMetrics`, and
 * INFERENCE_PUBLIC_ROUTES only with `publicInference`. A trailing `/*` matches a prefix.
 */
export const PUBLIC_ROUTES: readonly string[] = ['/healthz', '/readyz', '/openapi.json', '/docs', '/docs/*', '/v2/health/live', '/v2/health/ready', '/ui', '/ui/*', '/api/v1/devices/reports/:token'];
export const INFERENCE_PUBLIC_ROUTES: readonly string[] = ['/v2', '/v2/*', '/v1/models/*', '/api/v1/deployments/:name/feedback'];

/** Whether `url` (a route pattern) is in `patterns` (exact, or under a `/*` prefix). */
export function matchesRoute(url: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('/*') ? url.startsWith(p.slice(0, -1)) : url === p));
}

/** A preHandler (hoisted to onRequest by route-table.ts) that carries the roles it admits. */
export type RoleGuard = ((req: FastifyRequest) => Promise<void>) & { roles: readonly Role[] };

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string' || !/^Bearer /i.test(h)) return null;
  const t = h.slice(7).trim();
  return t.length > 0 && t.length <= 512 ? t : null;
}

/**
 * preHandler factory: the request must carry `Authorization: Bearer <token>` of one of `roles`
 * (admin passes everything). 401 FL_ERR_AUTH_REQUIRED without a token, 401
 * FL_ERR_AUTH_INVALID_TOKEN for an unknown/expired/revoked one, 403 FL_ERR_AUTH_FORBIDDEN for a
 * valid token of another role. A missing or invalid token counts against the address's failure
 * throttle and, once the address is over its budget, is answered 429 FL_ERR_AUTH_THROTTLED; a
 * valid token is never refused by the throttle. The guard carries its `roles` so that tests (and
 * docs) can read each route's requirement from the table.
 */
export function requireRole(auth: AuthConfig, roles: readonly Role[]): RoleGuard {
  const guard = async (req: FastifyRequest): Promise<void> => {
    const token = bearer(req);
    const p = token ? await auth.authenticate(token) : null;
    if (!p) {
      const over = auth.throttle?.fail(req.ip);
      if (over) throw new AppError('FL_ERR_AUTH_THROTTLED', over);
      throw new AppError(token ? 'FL_ERR_AUTH_INVALID_TOKEN' : 'FL_ERR_AUTH_REQUIRED');
    }
    if (p.role !== 'admin' && !roles.includes(p.role)) throw new AppError('FL_ERR_AUTH_FORBIDDEN', { role: p.role, needs: roles });
    req.principal = p;
  };
  return Object.assign(guard, { roles });
}

/**
 * preHandler of a public route whose handler still asks who calls (bandit feedback under
 * publicInference, where the deployment may restrict it): a request without an Authorization
 * header passes with `principal` null; a credential that is presented is checked as by
 * requireRole (401 when invalid, counted by the throttle). It carries no roles, so the route
 * stays public in the route table.
 */
export function identify(auth: AuthConfig): (req: FastifyRequest) => Promise<void> {
  const anyRole = requireRole(auth, ALL_ROLES);
  return async (req) => {
    if (req.headers.authorization === undefined) req.principal = null;
    else await anyRole(req);
  };
}

const ALL_ROLES: readonly Role[] = ['admin', 'viewer', 'device', 'inference', 'serving'];

/** The name recorded as the actor of an admin change (alias history, token creation). */
export function actorOf(req: FastifyRequest): string {
  const p = req.principal;
  return p ? (p.tokenId ? `token:${p.tokenId}` : p.name) : 'anonymous';
}
