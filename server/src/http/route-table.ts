import type { FastifyInstance, RouteOptions } from 'fastify';
import type { Role } from './auth.js';

export interface RouteInfo {
  method: string;
  url: string;
  /** Roles the route's guard admits (admin always passes); null: no guard (a public route). */
  roles: readonly Role[] | null;
}

function guardRoles(r: RouteOptions): readonly Role[] | null {
  const hooks = r.preHandler === undefined ? [] : Array.isArray(r.preHandler) ? r.preHandler : [r.preHandler];
  for (const h of hooks) {
    const roles = (h as { roles?: readonly Role[] }).roles;
    if (roles) return roles;
  }
  return null;
}

/**
 * Record every route as it is added (an onRoute hook on the root, so routes of every plugin are
 * seen). Call before registering route plugins. HEAD routes fastify derives from GETs are included.
 */
export function collectRoutes(app: FastifyInstance): RouteInfo[] {
  const routes: RouteInfo[] = [];
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) routes.push({ method: String(m).toUpperCase(), url: r.url ?? r.path, roles: guardRoles(r) });
  });
  return routes;
}
