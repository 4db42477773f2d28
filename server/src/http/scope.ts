import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth/authenticator.js';
import { AppError } from '../errors.js';
import type { Store } from '../store/store.js';

/**
 * Resource scopes of credentials, checked after the role guard (route-table.ts hoists the guard
 * to onRequest; these run as preHandlers, once the path parameters are validated):
 *  - an issued device token reads only the model its task publishes to (`TaskRecord.modelName`);
 *    the bootstrap device token, valid for every task, reads every model;
 *  - an inference token with `endpoints` calls only those deployments or models.
 * Out of scope answers 403 FL_ERR_AUTH_OUT_OF_SCOPE, whether or not the resource exists.
 */

/** The models `p` may read from the registry; null: no model scope (admin, viewer, bootstrap device). */
export async function readableModels(store: Store, p: Principal | null): Promise<Set<string> | null> {
  if (!p || p.role !== 'device' || p.taskId === undefined) return null;
  const task = await store.getTask(p.taskId);
  return new Set(task ? [task.modelName] : []);
}

/** preHandler for registry routes naming a model in `:name`. */
export function modelScope(store: Store) {
  return async (req: FastifyRequest): Promise<void> => {
    const models = await readableModels(store, req.principal);
    const model = (req.params as { name: string }).name;
    if (models && !models.has(model)) throw new AppError('FL_ERR_AUTH_OUT_OF_SCOPE', { model, task: req.principal?.taskId ?? null });
  };
}

/** Throws FL_ERR_AUTH_OUT_OF_SCOPE when `p` is an inference token scoped to endpoints other than `endpoint`. */
export function assertEndpointScope(p: Principal | null, endpoint: string): void {
  if (p?.role === 'inference' && p.endpoints && !p.endpoints.includes(endpoint)) throw new AppError('FL_ERR_AUTH_OUT_OF_SCOPE', { endpoint, endpoints: p.endpoints });
}

/**
 * preHandler for serving routes whose `:name` is the endpoint (a deployment or a model).
 * `endpointOf` maps the parameter to the endpoint where the path carries more (TF Serving's `{name}:predict`).
 */
export function endpointScope(endpointOf: (name: string) => string = (n) => n) {
  // Callback style, not async: it runs on every inference request, and fastify waits a promise
  // (one more microtask and allocation) only for hooks that return one.
  return (req: FastifyRequest, _reply: unknown, done: (err?: Error) => void): void => {
    try {
      assertEndpointScope(req.principal, endpointOf((req.params as { name: string }).name));
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  };
}
