import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { tokenView, type Authenticator } from '../auth/authenticator.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { AppError } from '../errors.js';
import type { Store } from '../store/store.js';
import { actorOf, requireRole, type AuthConfig } from './auth.js';
import { ResourceId } from './ids.js';
import { TaskId } from './tasks-routes.js';

export interface TokensRoutesOptions {
  coordinator: Coordinator;
  store: Store;
  auth: AuthConfig;
  authenticator: Authenticator;
}

const IdParams = z.object({ id: z.string().min(1).max(64) }).strict();
const CreateBody = z
  .object({
    role: z.enum(['admin', 'viewer', 'device', 'inference']),
    /** Required for device tokens: the one task the token may join. */
    taskId: TaskId.optional(),
    /** Inference tokens only: the deployments or models (OIP and TF Serving `{name}`) it may call; absent: every endpoint. */
    endpoints: z.array(ResourceId).min(1).max(64).optional(),
    name: z.string().min(1).max(128).optional(),
    /** Lifetime in seconds from now; absent: no expiry. */
    ttlSeconds: z.number().int().min(1).max(10 * 365 * 86400).optional(),
  })
  .strict();

/**
 * API and enrolment tokens (admin only). The secret is in the creation response and nowhere
 * else; the store keeps its sha256. Revoking a token disconnects the device sessions opened with it.
 */
export const tokensRoutes: FastifyPluginAsync<TokensRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(opts.auth, ['admin']);

  r.post('/api/v1/tokens', { schema: { body: CreateBody, tags: ['tokens'], summary: 'Create a token (the secret is shown once)' }, preHandler: admin }, async (req, reply) => {
    const b = req.body;
    if (b.role === 'device') {
      if (!b.taskId) throw new AppError('FL_ERR_HTTP_VALIDATION', { why: 'device tokens need a taskId' });
      opts.coordinator.getRunner(b.taskId);
    } else if (b.taskId) throw new AppError('FL_ERR_HTTP_VALIDATION', { why: 'only device tokens are scoped to a task' });
    const { record, token } = await opts.authenticator.createToken({
      role: b.role,
      taskId: b.taskId,
      endpoints: b.endpoints,
      name: b.name,
      expiresAt: b.ttlSeconds !== undefined ? Date.now() + b.ttlSeconds * 1000 : undefined,
      createdBy: actorOf(req),
    });
    return reply.status(201).send({ ...tokenView(record), token });
  });

  r.get('/api/v1/tokens', { schema: { tags: ['tokens'], summary: 'List tokens (never their secrets)' }, preHandler: admin }, async () => ({
    tokens: (await opts.store.listTokens()).map(tokenView),
  }));

  r.get('/api/v1/tokens/:id', { schema: { params: IdParams, tags: ['tokens'], summary: 'One token' }, preHandler: admin }, async (req) => {
    const t = await opts.store.getToken(req.params.id);
    if (!t) throw new AppError('FL_ERR_TOKEN_NOT_FOUND', { token: req.params.id });
    return tokenView(t);
  });

  r.post('/api/v1/tokens/:id/revoke', { schema: { params: IdParams, tags: ['tokens'], summary: 'Revoke a token and disconnect its sessions' }, preHandler: admin }, async (req) => {
    const t = await opts.store.revokeToken(req.params.id, Date.now());
    if (!t) throw new AppError('FL_ERR_TOKEN_NOT_FOUND', { token: req.params.id });
    const disconnected = opts.coordinator.disconnectToken(t.id);
    return { ...tokenView(t), disconnectedSessions: disconnected };
  });
};
