import type { FastifyPluginAsync } from 'fastify';
import { requireRole, type AuthConfig } from './auth.js';

/** GET /api/v1/cluster (viewer): the nodes, their devices, their role per task and last heartbeat (docs/cluster.md). */
export const clusterRoutes: FastifyPluginAsync<{ auth: AuthConfig; view: () => Promise<unknown> }> = async (app, opts) => {
  const reader = requireRole(opts.auth, ['admin', 'viewer']);
  app.get('/api/v1/cluster', { schema: { tags: ['cluster'], summary: 'Cluster nodes, their devices, leaders per task, heartbeats' }, preHandler: reader }, async () => opts.view());
};
