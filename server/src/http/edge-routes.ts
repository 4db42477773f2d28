import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PayloadRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { requireRole, type AuthConfig } from './auth.js';

export interface EdgeRoutesOptions {
  store: Store;
  auth: AuthConfig;
  /** Payloads kept per model (the serving payload log's cap), so that edge payloads share its bound. */
  payloadCapPerModel: number;
  /** Sources remembered at once (default 1000); the stalest is forgotten beyond it. */
  maxSources?: number;
}

const Name = z.string().min(1).max(128);
const Latency = z.object({ count: z.number().int().min(0), mean: z.number().min(0), min: z.number().min(0), max: z.number().min(0), p50: z.number().min(0), p95: z.number().min(0), p99: z.number().min(0) }).strict();
const ModelStats = z
  .object({
    model: Name,
    version: z.number().int().min(1),
    variant: z.string().min(1).max(32).default('float32'),
    requests: z.number().int().min(0),
    errors: z.number().int().min(0),
    queueDepth: z.number().int().min(0).default(0),
    latencyMs: Latency,
  })
  .strict();
const Tensor = z.object({ shape: z.array(z.number().int().min(0)).max(8), data: z.array(z.number()).max(1 << 16) }).strict();
const Payload = z
  .object({
    model: Name,
    version: z.number().int().min(1),
    requestId: z.string().min(1).max(128),
    deployment: Name.optional(),
    variant: z.string().min(1).max(32).optional(),
    at: z.number().int().min(0),
    input: Tensor,
    output: Tensor,
    latencyMs: z.number().min(0),
    truncatedFrom: z.number().int().min(1).optional(),
  })
  .strict();
const ReportBody = z
  .object({
    /** Who reports: a replica's or sidecar's id (pod name, host-pid). */
    source: z.string().min(1).max(128),
    kind: z.enum(['replica', 'sidecar']),
    /** Version each followed model's ref resolves to there, e.g. `{ "mnist@production": 4 }`. */
    synced: z.record(z.string().max(256), z.number().int().min(1)).default({}),
    models: z.array(ModelStats).max(256).default([]),
    payloads: z.array(Payload).max(1000).default([]),
  })
  .strict();
const IntrospectBody = z.object({ token: z.string().min(1).max(512) }).strict();

export type EdgeReport = z.infer<typeof ReportBody> & { receivedAt: number; payloadsAccepted: number };

/**
 * What serving replicas and sidecars send upstream (docs/deploy.md, "Sidecar"). Contracts:
 *  - POST /api/v1/edge/reports (serving or admin): the latest latency stats of a source replace
 *    its previous ones (kept in memory, at most `maxSources`); its sampled payloads go into the
 *    payload log of models that exist (others are counted as dropped), under the log's per-model cap;
 *  - GET /api/v1/edge/reports (viewer or admin): the last report of every source, newest first;
 *  - POST /api/v1/edge/introspect (serving or admin): the principal of a caller's token, so that
 *    a replica holding no token store can check its callers; `{ active: false }` for a bad one
 *    and for the bootstrap admin token.
 */
export const edgeRoutes: FastifyPluginAsync<EdgeRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const edge = requireRole(opts.auth, ['serving']);
  const readers = requireRole(opts.auth, ['viewer']);
  const reports = new Map<string, EdgeReport>();
  const max = opts.maxSources ?? 1000;

  r.post('/api/v1/edge/reports', { schema: { tags: ['edge'], summary: 'A replica or sidecar reports its latency stats and sampled payloads', body: ReportBody }, preHandler: edge }, async (req) => {
    const body = req.body;
    const known = new Map<string, boolean>();
    const accepted: PayloadRecord[] = [];
    for (const p of body.payloads) {
      if (!known.has(p.model)) known.set(p.model, (await opts.store.getModel(p.model)) !== null);
      if (known.get(p.model)) accepted.push(p);
    }
    if (accepted.length > 0) await opts.store.appendPayloads(accepted, opts.payloadCapPerModel);
    reports.delete(body.source);
    reports.set(body.source, { ...body, payloads: [], receivedAt: Date.now(), payloadsAccepted: accepted.length });
    while (reports.size > max) reports.delete(reports.keys().next().value!);
    return { source: body.source, payloadsAccepted: accepted.length, payloadsDropped: body.payloads.length - accepted.length };
  });

  r.get('/api/v1/edge/reports', { schema: { tags: ['edge'], summary: 'The last report of every replica and sidecar' }, preHandler: readers }, async () => ({
    reports: [...reports.values()].reverse().map(({ payloads: _p, ...rest }) => rest),
  }));

  r.post('/api/v1/edge/introspect', { schema: { tags: ['edge'], summary: "A caller's token as the coordinator sees it (for replicas without a token store)", body: IntrospectBody }, preHandler: edge }, async (req) => {
    const p = await opts.auth.authenticate(req.body.token);
    // The bootstrap admin token is never confirmed to a replica: it calls replicas with issued tokens.
    if (!p || (p.role === 'admin' && p.tokenId === null)) return { active: false };
    return { active: true, principal: p };
  });
};
