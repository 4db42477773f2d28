import type { FastifyPluginAsync } from 'fastify';
import type { Coordinator } from '../coordinator/coordinator.js';
import { AppError } from '../errors.js';
import { requireRole, type AuthConfig } from './auth.js';
import { LiveFeed, type LiveFeedOptions } from './live-feed.js';

export interface EventsRoutesOptions extends LiveFeedOptions {
  coordinator: Coordinator;
  auth: AuthConfig;
  /** Streams open at once (default 100); more answer 429 FL_ERR_HTTP_RATE_LIMITED. */
  maxSubscribers?: number;
}

/**
 * GET /api/v1/events (viewer or admin): the console's live channel as server-sent events over
 * one long response (see LiveFeed for the frames). The token travels in the Authorization header
 * like on every route — browsers read the stream with fetch(), not EventSource, which cannot send
 * headers — so it never appears in a URL or a log line. A request that does not accept
 * `text/event-stream` gets the current pulse snapshot as JSON instead of a stream.
 */
export const eventsRoutes: FastifyPluginAsync<EventsRoutesOptions> = async (app, opts) => {
  const reader = requireRole(opts.auth, ['admin', 'viewer']);
  const feed = new LiveFeed(opts.coordinator, opts);
  const max = opts.maxSubscribers ?? 100;
  app.addHook('preClose', async () => feed.close());

  app.get('/api/v1/events', { schema: { tags: ['events'], summary: 'Live channel (server-sent events: task, round, evaluation, pulse); JSON snapshot without Accept: text/event-stream' }, exposeHeadRoute: false, preHandler: reader }, async (req, reply) => {
    if (!String(req.headers.accept ?? '').includes('text/event-stream')) return feed.snapshot();
    if (feed.subscribers >= max) throw new AppError('FL_ERR_HTTP_RATE_LIMITED', { why: 'too many live streams open', max });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    res.write('retry: 2000\n\n');
    const unsubscribe = feed.subscribe({
      write: (chunk) => (res.write(chunk), res.writableLength),
      close: () => res.end(),
    });
    req.raw.on('close', unsubscribe);
  });
};
