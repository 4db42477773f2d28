import type { FastifyPluginAsync } from 'fastify';
import type { FlotillaMetrics } from '../metrics/flotilla-metrics.js';
import { requireRole, type AuthConfig } from './auth.js';

export interface MetricsRoutesOptions {
  metrics: FlotillaMetrics;
  auth: AuthConfig;
  /** Serve /metrics without a token (for scrapers on a trusted network). Default: viewer or admin token. */
  public: boolean;
}

/** Prometheus text exposition at /metrics. */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, opts) => {
  const guard = opts.public ? undefined : requireRole(opts.auth, ['admin', 'viewer']);
  app.get('/metrics', { schema: { tags: ['metrics'], summary: 'Prometheus metrics (text exposition format)' }, ...(guard ? { preHandler: guard } : {}) }, async (_req, reply) => {
    const body = await opts.metrics.metrics();
    return reply.type(opts.metrics.contentType()).send(body);
  });
};
