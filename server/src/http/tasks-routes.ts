import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ModelSpecSchema } from '@flotilla/protocol';
import { PRESETS } from '@flotilla/model';
import { bytesToFloat32 } from '@flotilla/protocol';
import type { Coordinator } from '../coordinator/coordinator.js';
import { AppError } from '../errors.js';
import type { Store } from '../store/store.js';
import { requireRole, type AuthConfig } from './auth.js';
import { ResourceId } from './ids.js';
import { roundDetail, roundSummary, taskView } from './task-view.js';

export interface TasksRoutesOptions {
  coordinator: Coordinator;
  store: Store;
  auth: AuthConfig;
}

/** Task ids (and model names chosen at task creation): see ids.ts. */
export const TaskId = ResourceId;
const IdParams = z.object({ id: TaskId }).strict();
const RoundParams = z.object({ id: TaskId, round: z.coerce.number().int().min(1).max(1e9) }).strict();
/** A plan as JSON; the coordinator validates it with TaskPlanSchema (strict), so bad plans answer FL_ERR_TASK_INVALID_SPEC. */
const PlanObject = z.record(z.string().max(64), z.unknown()).describe('A TaskPlan (protocol/src/plan.ts); validated with TaskPlanSchema');
const Base64 = z.string().max(64 * 1024 * 1024).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'standard base64');
const CreateBody = z
  .object({
    id: TaskId,
    modelName: TaskId.optional(),
    preset: z.enum(PRESETS).optional(),
    spec: ModelSpecSchema.optional(),
    /** Initial weights with `spec`: base64 of the flat little-endian float32 vector (never a JSON number array). */
    weights: Base64.optional().describe('base64 of the flat little-endian float32 weights, in manifest order'),
    /** Fine-tune: start from a registry version, `model@version` or `model@alias`. Uploaded models arrive this way too (POST /api/v1/models/{name}/versions first). */
    fromVersion: z
      .string()
      .max(200)
      .regex(/^[A-Za-z0-9._:-]+@[A-Za-z0-9._-]+$/, 'model@version or model@alias')
      .optional()
      .describe('model@version or model@alias to start from'),
    plan: PlanObject,
    start: z.boolean().default(false),
  })
  .strict();
const Page = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50), offset: z.coerce.number().int().min(0).max(1e9).default(0) }).strict();
const TaskActions = ['start', 'pause', 'resume', 'stop'] as const;

function decodeWeights(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.byteLength % 4 !== 0) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { why: 'weights are not a whole number of float32 values', bytes: bytes.byteLength });
  return bytesToFloat32(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/**
 * Task administration under /api/v1/tasks: create (preset, or spec + base64 weights), list, get,
 * plan updates (from the next round), lifecycle actions, and the task's rounds.
 */
export const tasksRoutes: FastifyPluginAsync<TasksRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(opts.auth, ['admin']);
  const reader = requireRole(opts.auth, ['admin', 'viewer']);
  const c = opts.coordinator;
  const view = (id: string) => taskView(c.getRunner(id).record, c.sessions.forTask(id).length);

  r.post('/api/v1/tasks', { schema: { body: CreateBody, tags: ['tasks'], summary: 'Create a task from a preset, a model spec with initial weights, or a registry version (fromVersion)' }, preHandler: admin }, async (req, reply) => {
    const b = req.body;
    const at = b.fromVersion?.lastIndexOf('@') ?? -1;
    const t = await c.createTask({
      fromVersion: b.fromVersion ? { model: b.fromVersion.slice(0, at), ref: b.fromVersion.slice(at + 1) } : undefined,
      id: b.id,
      modelName: b.modelName,
      preset: b.preset,
      spec: b.spec,
      weights: b.weights !== undefined ? decodeWeights(b.weights) : undefined,
      plan: b.plan as never,
      start: b.start,
    });
    return reply.status(201).send(view(t.id));
  });

  r.get('/api/v1/tasks', { schema: { tags: ['tasks'], summary: 'List tasks' }, preHandler: reader }, async () => ({ tasks: c.listRunners().map((x) => view(x.id)) }));

  r.get('/api/v1/tasks/:id', { schema: { params: IdParams, tags: ['tasks'], summary: 'One task' }, preHandler: reader }, async (req) => view(req.params.id));

  r.patch('/api/v1/tasks/:id/plan', {
    schema: { params: IdParams, body: PlanObject, tags: ['tasks'], summary: 'Change plan fields (null removes an optional one); applies from the next round' },
    preHandler: admin,
  }, async (req) => {
    await c.updatePlan(req.params.id, req.body);
    return view(req.params.id);
  });

  for (const action of TaskActions) {
    r.post(`/api/v1/tasks/:id/${action}`, { schema: { params: IdParams, tags: ['tasks'], summary: `${action[0].toUpperCase()}${action.slice(1)} the task` }, preHandler: admin }, async (req) => {
      const id = req.params.id;
      const state = c.getRunner(id).record.state;
      if (action === 'start') {
        if (state !== 'created') throw new AppError('FL_ERR_TASK_INVALID_STATE', { task: id, state, why: 'start a created task; resume a paused one' });
        await c.startTask(id);
      } else if (action === 'resume') {
        if (state !== 'paused') throw new AppError('FL_ERR_TASK_INVALID_STATE', { task: id, state, why: 'only a paused task resumes' });
        await c.startTask(id);
      } else if (action === 'pause') await c.pauseTask(id);
      else await c.stopTask(id);
      return view(id);
    });
  }

  r.get('/api/v1/tasks/:id/rounds', { schema: { params: IdParams, querystring: Page, tags: ['rounds'], summary: 'Rounds of a task, newest first, paged' }, preHandler: reader }, async (req) => {
    const live = c.getRunner(req.params.id).currentRound;
    const { limit, offset } = req.query;
    const rounds = await opts.store.listRounds(req.params.id, { limit, offset });
    // The round in flight is stored when it starts; its live record has the reports since.
    const current = rounds.map((x) => (live && live.round === x.round ? live.record : x));
    return { rounds: current.map(roundSummary), limit, offset, nextOffset: rounds.length === limit ? offset + limit : null };
  });

  r.get('/api/v1/tasks/:id/rounds/:round', { schema: { params: RoundParams, tags: ['rounds'], summary: 'One round in detail' }, preHandler: reader }, async (req) => {
    const runner = c.getRunner(req.params.id);
    const live = runner.currentRound;
    if (live && live.round === req.params.round) return roundDetail(live.record);
    const round = await opts.store.getRound(req.params.id, req.params.round);
    if (!round) throw new AppError('FL_ERR_ROUND_NOT_FOUND', { task: req.params.id, round: req.params.round });
    return roundDetail(round);
  });
};
