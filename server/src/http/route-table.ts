import type { FastifyInstance, RouteOptions } from 'fastify';
import type { Role } from './auth.js';

export interface RouteInfo {
  method: string;
  url: string;
  /** Roles the route's guard admits (admin always passes); null: no guard (a public route). */
  roles: readonly Role[] | null;
}

type Hook = NonNullable<RouteOptions['onRequest']>;
const asList = (h: unknown): unknown[] => (h === undefined ? [] : Array.isArray(h) ? h : [h]);
const rolesOf = (h: unknown): readonly Role[] | undefined => (h as { roles?: readonly Role[] } | null)?.roles;

/**
 * Move role guards from preHandler to the front of onRequest, so that credentials are checked
 * before the body is read, parsed or validated: an unauthenticated caller gets 401, never a 400
 * that describes the schema, and never makes the server buffer a body. Returns the guard's roles.
 */
function hoistGuard(r: RouteOptions): readonly Role[] | null {
  const pre = asList(r.preHandler);
  const guard = pre.find((h) => rolesOf(h));
  const onReq = asList(r.onRequest);
  if (guard) {
    r.preHandler = pre.filter((h) => h !== guard) as Hook;
    r.onRequest = [guard, ...onReq] as Hook;
    return rolesOf(guard)!;
  }
  const already = onReq.find((h) => rolesOf(h));
  return already ? rolesOf(already)! : null;
}

/**
 * Record every route as it is added (an onRoute hook on the root, so routes of every plugin are
 * seen) and hoist its role guard to onRequest. Call before registering route plugins. HEAD routes
 * fastify derives from GETs are included.
 */
export function collectRoutes(app: FastifyInstance): RouteInfo[] {
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (r) => {
    const roles = hoistGuard(r);
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) routes.push({ method: String(m).toUpperCase(), url: r.url ?? r.path, roles });
  });
  return routes;
}
