import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { VARIANTS } from '../registry/variants.js';
import type { Serving } from '../serving/serving.js';
import type { DeploymentRecord, DeploymentRouting, FeedbackPolicy } from '../store/records.js';
import { identify, requireRole, type AuthConfig, type Principal } from './auth.js';
import { assertEndpointScope } from './scope.js';

export interface DeploymentsRoutesOptions {
  serving: Serving;
  auth: AuthConfig;
  /** Feedback without a token (as inference). */
  publicInference?: boolean;
}

const Name = z.string().min(1).max(128);
const Target = z
  .object({
    ref: z.union([z.string().min(1).max(64), z.number().int().min(1)]).transform(String),
    variant: z.enum(['float32', ...VARIANTS]).optional(),
    weight: z.number().positive().max(1e6).optional(),
  })
  .strict();
const Routing = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('split'), targets: z.array(Target).min(1).max(16), sticky: z.boolean().optional() }).strict(),
  z.object({ mode: z.literal('bandit'), algorithm: z.enum(['thompson', 'ucb1']).default('thompson'), targets: z.array(Target).min(2).max(16) }).strict(),
  z.object({ mode: z.literal('shadow'), primary: Target, shadow: Target, percent: z.number().min(0).max(100).default(100) }).strict(),
]);
const Batching = z
  .object({
    maxBatchSize: z.number().int().min(1).max(4096),
    maxQueueDelayMs: z.number().min(0).max(1000),
    maxQueueSize: z.number().int().min(1).max(100_000),
    timeoutMs: z.number().int().min(1).max(600_000),
    delay: z.enum(['adaptive', 'fixed']),
    instances: z.number().int().min(0).max(64),
  })
  .partial()
  .strict();
/** Who may send bandit feedback (FeedbackPolicy in records.ts); absent: `callers`. */
const FeedbackPolicySchema = z.discriminatedUnion('allow', [
  z.object({ allow: z.literal('callers') }).strict(),
  z.object({ allow: z.literal('admin') }).strict(),
  z.object({ allow: z.literal('tokens'), tokenIds: z.array(z.string().min(1).max(64)).min(1).max(256) }).strict(),
]);
const Config = z
  .object({ model: Name, routing: Routing, batching: Batching.optional(), feedback: FeedbackPolicySchema.optional(), description: z.string().max(1000).optional() })
  .strict();
const CreateBody = Config.extend({ name: Name }).strict();
const NameParams = z.object({ name: Name }).strict();
const Feedback = z
  .object({ requestId: z.string().min(1).max(256), reward: z.union([z.number().min(0).max(1), z.boolean().transform((b) => (b ? 1 : 0))]) })
  .strict();
const PayloadQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    offset: z.coerce.number().int().min(0).default(0),
    version: z.coerce.number().int().min(1).optional(),
  })
  .strict();
const DriftQuery = z.object({ version: z.string().min(1).max(64).optional(), threshold: z.coerce.number().positive().max(100).default(0.5) }).strict();
const VersionParams = z.object({ name: Name, version: z.coerce.number().int().min(1) }).strict();
const StatsBody = z
  .object({ count: z.number().int().min(1), mean: z.array(z.number()).min(1).max(1_000_000), variance: z.array(z.number().min(0)).min(1).max(1_000_000), source: z.string().max(64).optional() })
  .strict();
const ConfirmBody = z
  .object({
    since: z.number().int().min(0).optional(),
    until: z.number().int().min(0).optional(),
    minRequests: z.number().int().min(1).max(1_000_000).optional(),
    rowsPerRequest: z.number().int().min(1).max(4096).optional(),
    dryRun: z.boolean().optional(),
  })
  .strict();

/**
 * Whether `p` (null: no credential, only possible with publicInference) may send `d` feedback:
 * admin always; otherwise as `d.feedback` says. 401 FL_ERR_AUTH_REQUIRED when a credential is
 * needed and none came, 403 FL_ERR_AUTH_FORBIDDEN or FL_ERR_AUTH_OUT_OF_SCOPE when it is not enough.
 */
function assertFeedbackAllowed(p: Principal | null, d: DeploymentRecord): void {
  if (p?.role === 'admin') return;
  const policy = d.feedback ?? { allow: 'callers' };
  if (policy.allow === 'callers') {
    // The guard admitted only inference tokens, or anyone with publicInference.
    if (p?.role === 'inference') assertEndpointScope(p, d.name);
    return;
  }
  if (!p) throw new AppError('FL_ERR_AUTH_REQUIRED', { why: `deployment ${d.name} takes feedback only from ${policy.allow === 'admin' ? 'admin tokens' : 'listed tokens'}` });
  if (policy.allow === 'tokens' && p.role === 'inference' && p.tokenId !== null && policy.tokenIds.includes(p.tokenId)) return;
  throw new AppError('FL_ERR_AUTH_FORBIDDEN', { deployment: d.name, feedback: policy.allow });
}

/**
 * Deployments (`/api/v1/deployments`): create/list/get/update/delete, bandit feedback and live
 * statistics; the payload log, drift summary and drift reference of models; the serving cache.
 * Errors use the house form `{ error: { code, message, details } }`.
 */
export const deploymentsRoutes: FastifyPluginAsync<DeploymentsRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const serving = opts.serving;
  const admin = requireRole(opts.auth, ['admin']);
  const readers = requireRole(opts.auth, ['admin', 'viewer']);
  // Feedback takes an inference (or admin) token, or none with publicInference; then the deployment's policy decides.
  const feedbackCallers = opts.publicInference ? [identify(opts.auth)] : [requireRole(opts.auth, ['inference'])];
  const BASE = '/api/v1/deployments';

  /** A `tokens` policy names issued inference tokens that exist. */
  const checkPolicy = async (name: string, policy: FeedbackPolicy | undefined): Promise<void> => {
    if (policy?.allow !== 'tokens') return;
    for (const id of policy.tokenIds) {
      const t = await serving.store.getToken(id);
      if (!t || t.role !== 'inference') throw new AppError('FL_ERR_DEPLOYMENT_INVALID', { deployment: name, why: 'feedback.tokenIds names issued inference tokens', token: id });
    }
  };

  r.post(BASE, { schema: { body: CreateBody }, preHandler: admin }, async (req, reply) => {
    const { name, model, routing, batching, feedback, description } = req.body;
    await checkPolicy(name, feedback);
    const d = await serving.createDeployment({ name, model, routing: routing as DeploymentRouting, batching, feedback, description });
    return reply.status(201).header('location', `${BASE}/${encodeURIComponent(name)}`).send(d);
  });

  r.get(BASE, { preHandler: readers }, async () => ({ deployments: serving.listDeployments() }));

  r.get(`${BASE}/:name`, { schema: { params: NameParams }, preHandler: readers }, async (req) => {
    const d = serving.getDeployment(req.params.name);
    return { ...d, resolved: await serving.endpointVersions(d.name) };
  });

  r.put(`${BASE}/:name`, { schema: { params: NameParams, body: Config }, preHandler: admin }, async (req) => {
    const { model, routing, batching, feedback, description } = req.body;
    await checkPolicy(req.params.name, feedback);
    return serving.updateDeployment(req.params.name, { model, routing: routing as DeploymentRouting, batching, feedback, description });
  });

  r.delete(`${BASE}/:name`, { schema: { params: NameParams }, preHandler: admin }, async (req, reply) => {
    await serving.deleteDeployment(req.params.name);
    return reply.status(204).send();
  });

  r.post(`${BASE}/:name/feedback`, { schema: { params: NameParams, body: Feedback }, preHandler: feedbackCallers }, async (req) => {
    assertFeedbackAllowed(req.principal, serving.getDeployment(req.params.name));
    const credited = await serving.feedback(req.params.name, req.body.requestId, req.body.reward);
    return { deployment: req.params.name, requestId: req.body.requestId, reward: req.body.reward, credited };
  });

  r.get(`${BASE}/:name/stats`, { schema: { params: NameParams }, preHandler: readers }, async (req) => serving.deploymentStats(req.params.name));

  r.get('/api/v1/serving', { preHandler: readers }, async () => serving.servingStats());

  r.get('/api/v1/models/:name/payloads', { schema: { params: NameParams, querystring: PayloadQuery }, preHandler: readers }, async (req) => {
    const { limit, offset, version } = req.query;
    const store = serving.store;
    if (!(await store.getModel(req.params.name))) throw new AppError('FL_ERR_MODEL_NOT_FOUND', { model: req.params.name });
    await serving.payloads.flush();
    const [items, total] = await Promise.all([
      store.listPayloads(req.params.name, { limit: limit + 1, offset, version }),
      store.countPayloads(req.params.name, version),
    ]);
    return {
      model: req.params.name,
      payloads: items.slice(0, limit),
      total,
      limit,
      offset,
      nextOffset: items.length > limit ? offset + limit : null,
      sampling: { rate: serving.payloads.options.rate, capPerModel: serving.payloads.options.capPerModel },
    };
  });

  r.get('/api/v1/models/:name/drift', { schema: { params: NameParams, querystring: DriftQuery }, preHandler: readers }, async (req) =>
    serving.drift(req.params.name, req.query.version, req.query.threshold),
  );

  r.put('/api/v1/models/:name/versions/:version/input-stats', { schema: { params: VersionParams, body: StatsBody }, preHandler: admin }, async (req) => {
    const { count, mean, variance, source } = req.body;
    await serving.putReference(req.params.name, req.params.version, { count, mean, variance }, source ?? 'publish');
    return { model: req.params.name, version: req.params.version, count, source: source ?? 'publish' };
  });

  r.post('/api/v1/models/:name/versions/:version/input-stats/confirm', { schema: { params: VersionParams, body: ConfirmBody }, preHandler: admin }, async (req) => ({
    model: req.params.name,
    version: req.params.version,
    ...(await serving.confirmReference(req.params.name, req.params.version, req.body)),
  }));
};
