import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { Server as IOServer } from 'socket.io';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ClientToServerEvents, ServerToClientEvents } from '@flotilla/client/protocol';
import { Coordinator } from './coordinator/coordinator.js';
import { tokenMatches } from './coordinator/coordinator.js';
import type { CentralEvaluator } from './coordinator/deps.js';
import { attachGateway } from './coordinator/gateway.js';
import type { SocketData } from './coordinator/sessions.js';
import { AppError } from './errors.js';
import { installErrorHandling } from './http/error-handler.js';
import { healthRoutes } from './http/health-routes.js';
import { registryRoutes } from './http/registry-routes.js';
import { tasksRoutes } from './http/tasks-routes.js';
import type { BlobStore } from './store/blob-store.js';
import { openStorage } from './store/open-storage.js';
import { Registry, type RegistryOptions } from './registry/registry.js';
import type { Store } from './store/store.js';

export interface AppOptions {
  /** Persistence given ready-made (store and blobs together); the app closes them. */
  store?: Store;
  blobs?: BlobStore;
  /** Otherwise: SQLite + files under dataDir, or MongoDB + GridFS at mongodbUrl, or memory when neither. */
  dataDir?: string;
  mongodbUrl?: string;
  /** fastify/pino logger setting; false by default for embedding. */
  logger?: boolean | Record<string, unknown>;
  /** Token devices present at hello; generated when absent (read it from app.flotilla.deviceToken). */
  deviceToken?: string;
  /** Bearer token of the admin API; generated when absent. */
  adminToken?: string;
  /** Server-side test-set evaluation of each new version (and of its variants). */
  centralEvaluator?: CentralEvaluator;
  /** Variants made at publish, pruning sparsity, int8 block size. */
  registry?: Omit<RegistryOptions, 'evaluator'>;
  heartbeatIntervalMs?: number;
  sessionTimeoutMs?: number;
  /** Messages one device connection may send: burst and sustained rate (default 100 / 50 per s). */
  deviceRateLimit?: { burst: number; perSecond: number };
  /** Largest socket.io message, bytes: the transport's last guard (plans set smaller per-update limits). */
  maxMessageBytes?: number;
  /** Largest REST body, bytes. */
  bodyLimit?: number;
}

export interface Flotilla {
  coordinator: Coordinator;
  registry: Registry;
  store: Store;
  blobs: BlobStore;
  io: IOServer<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
  deviceToken: string;
  adminToken: string;
}

export type FlotillaApp = FastifyInstance & { flotilla: Flotilla };

/**
 * Build the whole server without listening: fastify (REST) and socket.io (devices) on one HTTP
 * server, the coordinator with tasks resumed from the store. Callers `listen()` and `close()`;
 * close releases sockets, timers and the store.
 */
export async function buildApp(opts: AppOptions = {}): Promise<FlotillaApp> {
  const storage =
    opts.store && opts.blobs
      ? { store: opts.store, blobs: opts.blobs, close: async () => (await opts.store!.close(), await opts.blobs!.close()) }
      : await openStorage({ dataDir: opts.dataDir, mongodbUrl: opts.mongodbUrl });
  const { store, blobs } = storage;
  if (opts.store) await store.init();
  const deviceToken = opts.deviceToken ?? randomBytes(24).toString('base64url');
  const adminToken = opts.adminToken ?? randomBytes(24).toString('base64url');
  const auth = { adminToken, deviceToken };

  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: opts.bodyLimit ?? 8 * 1024 * 1024 });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);

  const registry = new Registry(store, blobs, { ...opts.registry, evaluator: opts.centralEvaluator });
  const coordinator = new Coordinator({
    store,
    registry,
    logger: app.log,
    evaluator: opts.centralEvaluator,
    authenticateDevice: async (token) => {
      if (!tokenMatches(token, deviceToken)) throw new AppError('FL_ERR_AUTH_INVALID_TOKEN');
    },
  });
  await coordinator.init();

  const io: Flotilla['io'] = new IOServer(app.server, {
    maxHttpBufferSize: opts.maxMessageBytes ?? 80 * 1024 * 1024,
    serveClient: false,
    transports: ['websocket', 'polling'],
  });
  const stopGateway = attachGateway(io, coordinator, {
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 5_000,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 30_000,
    rateLimit: opts.deviceRateLimit ?? { burst: 100, perSecond: 50 },
  });

  const flotilla: Flotilla = { coordinator, registry, store, blobs, io, deviceToken, adminToken };
  app.decorate('flotilla', flotilla);

  await app.register(healthRoutes, { store, ready: () => true });
  await app.register(registryRoutes, { store, blobs, auth, registry });
  await app.register(tasksRoutes, { coordinator, store, auth });

  app.addHook('preClose', async () => {
    stopGateway();
    coordinator.close();
    io.local.disconnectSockets(true);
  });
  app.addHook('onClose', async () => {
    await new Promise<void>((resolve) => io.close(() => resolve()));
    await storage.close();
  });
  return app as unknown as FlotillaApp;
}
