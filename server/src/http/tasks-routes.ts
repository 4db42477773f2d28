import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PRESETS } from '@flotilla/client/model';
import type { Coordinator } from '../coordinator/coordinator.js';
import { AppError } from '../errors.js';
import type { Store } from '../store/store.js';
import { requireRole, type AuthConfig } from './auth.js';
import { taskView } from './task-view.js';

export interface TasksRoutesOptions {
  coordinator: Coordinator;
  store: Store;
  auth: AuthConfig;
}

const TaskId = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/);
const IdParams = z.object({ id: TaskId });
const CreateBody = z
  .object({
    id: TaskId,
    modelName: TaskId.optional(),
    preset: z.enum(PRESETS),
    // The plan is validated by the coordinator with TaskPlanSchema (one place), so bad plans get FL_ERR_TASK_INVALID_SPEC.
    plan: z.record(z.string(), z.unknown()),
    start: z.boolean().default(false),
  })
  .strict();
const Page = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50), offset: z.coerce.number().int().min(0).default(0) }).strict();

/** Task administration (issue 4 extends this with plan updates, clients and tokens). */
export const tasksRoutes: FastifyPluginAsync<TasksRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(opts.auth, ['admin']);
  const reader = requireRole(opts.auth, ['admin', 'viewer']);
  const c = opts.coordinator;
  const view = (id: string) => taskView(c.getRunner(id).record, c.sessions.forTask(id).length);

  r.post('/api/v1/tasks', { schema: { body: CreateBody }, preHandler: admin }, async (req, reply) => {
    const t = await c.createTask({ id: req.body.id, modelName: req.body.modelName, preset: req.body.preset, plan: req.body.plan as never, start: req.body.start });
    return reply.status(201).send(view(t.id));
  });

  r.get('/api/v1/tasks', { preHandler: reader }, async () => ({ tasks: c.listRunners().map((x) => view(x.id)) }));

  r.get('/api/v1/tasks/:id', { schema: { params: IdParams }, preHandler: reader }, async (req) => view(req.params.id));

  for (const action of ['start', 'pause', 'stop'] as const) {
    r.post(`/api/v1/tasks/:id/${action}`, { schema: { params: IdParams }, preHandler: admin }, async (req) => {
      if (action === 'start') await c.startTask(req.params.id);
      else if (action === 'pause') await c.pauseTask(req.params.id);
      else await c.stopTask(req.params.id);
      return view(req.params.id);
    });
  }

  r.get('/api/v1/tasks/:id/rounds', { schema: { params: IdParams, querystring: Page }, preHandler: reader }, async (req) => {
    c.getRunner(req.params.id);
    return { rounds: await opts.store.listRounds(req.params.id, req.query) };
  });

  r.get('/api/v1/tasks/:id/rounds/:round', {
    schema: { params: IdParams.extend({ round: z.coerce.number().int().min(1) }) },
    preHandler: reader,
  }, async (req) => {
    c.getRunner(req.params.id);
    const round = await opts.store.getRound(req.params.id, req.params.round);
    if (!round) throw new AppError('FL_ERR_ROUND_NOT_FOUND', { task: req.params.id, round: req.params.round });
    return round;
  });
};
