import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../store/store.js';

/** Public liveness and readiness probes (listed in PUBLIC_ROUTES). */
export const healthRoutes: FastifyPluginAsync<{ store: Store; ready: () => boolean }> = async (app, opts) => {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: the process answers' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: the store answers and tasks are loaded' } }, async (_req, reply) => {
    const storeOk = await opts.store.ping().catch(() => false);
    const ok = storeOk && opts.ready();
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', store: storeOk, tasksLoaded: opts.ready() });
  });
};
