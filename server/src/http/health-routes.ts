import type { FastifyPluginAsync } from 'fastify';
import type { StorageHealth } from '../store/storage-health.js';
import type { Store } from '../store/store.js';

/**
 * Public liveness and readiness probes (listed in PUBLIC_ROUTES). Readiness needs the store to
 * answer, tasks loaded, and storage writable: after a write failed for lack of space /readyz
 * answers 503 (`storage: "full"`) until a write, or the probe write it attempts itself, succeeds.
 */
export const healthRoutes: FastifyPluginAsync<{ store: Store; storage: StorageHealth; ready: () => boolean }> = async (app, opts) => {
  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: the process answers' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['health'], summary: 'Readiness: the store answers, tasks are loaded and storage takes writes' } }, async (_req, reply) => {
    const storeOk = await opts.store.ping().catch(() => false);
    const writable = await opts.storage.writable();
    const ok = storeOk && writable && opts.ready();
    return reply
      .status(ok ? 200 : 503)
      .send({ status: ok ? 'ready' : 'not ready', store: storeOk, storage: writable ? 'ok' : 'full', tasksLoaded: opts.ready() });
  });
};
