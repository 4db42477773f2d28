import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../store/store.js';

/** Public liveness and readiness probes. */
export const healthRoutes: FastifyPluginAsync<{ store: Store; ready: () => boolean }> = async (app, opts) => {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const storeOk = await opts.store.ping().catch(() => false);
    const ok = storeOk && opts.ready();
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', store: storeOk, tasksLoaded: opts.ready() });
  });
};
