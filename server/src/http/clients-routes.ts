import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Coordinator } from '../coordinator/coordinator.js';
import { AppError } from '../errors.js';
import type { Store } from '../store/store.js';
import { requireRole, type AuthConfig } from './auth.js';
import { clientState, clientView, sessionView } from './task-view.js';
import { TaskId } from './tasks-routes.js';

export interface ClientsRoutesOptions {
  coordinator: Coordinator;
  store: Store;
  auth: AuthConfig;
}

const ClientId = z.string().min(1).max(128);
const IdParams = z.object({ id: ClientId }).strict();
const ListQuery = z
  .object({
    taskId: TaskId.optional(),
    state: z.enum(['connected', 'disconnected', 'revoked']).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    offset: z.coerce.number().int().min(0).max(1e9).default(0),
  })
  .strict();
/** How many of the task's latest rounds a client's detail scans for its participation. */
const ROUNDS_SCANNED = 500;

/**
 * Devices known to the coordinator (one record per device id, created at its first hello):
 * list with filters, detail with participation, and revocation (the session is cut and later
 * hellos with that device id are refused; to cut a credential, revoke its token).
 */
export const clientsRoutes: FastifyPluginAsync<ClientsRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(opts.auth, ['admin']);
  const reader = requireRole(opts.auth, ['admin', 'viewer']);
  const c = opts.coordinator;

  r.get('/api/v1/clients', { schema: { querystring: ListQuery, tags: ['clients'], summary: 'List clients, by task and state' }, preHandler: reader }, async (req) => {
    const { taskId, state, limit, offset } = req.query;
    await c.clients.flush(); // device activity is written behind; read it up to date
    const all = (await opts.store.listClients(taskId)).filter((x) => state === undefined || clientState(x, c.sessions.get(x.id)) === state);
    return { clients: all.slice(offset, offset + limit).map((x) => clientView(x, c.sessions.get(x.id))), total: all.length, limit, offset };
  });

  r.get('/api/v1/clients/:id', { schema: { params: IdParams, tags: ['clients'], summary: 'One client: session, rounds taken part in, rejected reports' }, preHandler: reader }, async (req) => {
    const rec = await c.clients.get(req.params.id);
    if (!rec) throw new AppError('FL_ERR_CLIENT_NOT_FOUND', { client: req.params.id });
    const session = c.sessions.get(rec.id);
    const rounds = [];
    const rejects = [];
    for (const rd of await opts.store.listRounds(rec.taskId, { limit: ROUNDS_SCANNED })) {
      const mine = rd.rejected.filter((x) => x.clientId === rec.id);
      for (const x of mine) rejects.push({ round: rd.round, code: x.code, at: x.at });
      if (!rd.selected.includes(rec.id) && mine.length === 0) continue;
      rounds.push({
        round: rd.round,
        roundState: rd.state,
        selected: rd.selected.includes(rec.id),
        reported: rd.reported.includes(rec.id),
        dropped: rd.dropped.includes(rec.id),
        rejected: mine.map((x) => x.code),
      });
    }
    return { ...clientView(rec, session), sessions: session && session.socket.connected ? [sessionView(session)] : [], rounds, rejects };
  });

  r.post('/api/v1/clients/:id/revoke', { schema: { params: IdParams, tags: ['clients'], summary: 'Revoke a device: disconnect it and refuse its later hellos' }, preHandler: admin }, async (req) => {
    const rec = await c.revokeClient(req.params.id);
    return clientView(rec, undefined);
  });
};
