import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { Server as IOServer } from 'socket.io';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ClientToServerEvents, ServerToClientEvents } from '@flotilla/protocol';
import { Authenticator } from './auth/authenticator.js';
import { Coordinator } from './coordinator/coordinator.js';
import type { CentralEvaluator } from './coordinator/deps.js';
import { attachGateway } from './coordinator/gateway.js';
import type { SocketData } from './coordinator/sessions.js';
import { AppError } from './errors.js';
import { INFERENCE_PUBLIC_ROUTES, type AuthThrottle } from './http/auth.js';
import { clientsRoutes } from './http/clients-routes.js';
import { installErrorHandling } from './http/error-handler.js';
import { frameworkErrors } from './http/framework-errors.js';
import { metricsRoutes } from './http/metrics-routes.js';
import { installOpenApi } from './http/openapi.js';
import { collectRoutes, type RouteInfo } from './http/route-table.js';
import { tokensRoutes } from './http/tokens-routes.js';
import { FlotillaMetrics } from './metrics/flotilla-metrics.js';
import { healthRoutes } from './http/health-routes.js';
import { registryRoutes } from './http/registry-routes.js';
import { tasksRoutes } from './http/tasks-routes.js';
import { servingRoutes } from './http/serving-routes.js';
import { Serving, type ServingOptions } from './serving/serving.js';
import { resolveBackend } from '@flotilla/model';
import type { BlobStore } from './store/blob-store.js';
import { openStorage } from './store/open-storage.js';
import { Registry, type RegistryOptions } from './registry/registry.js';
import { ClusterNode, type ClusterOptions } from './cluster/cluster-node.js';
import { announceServingWrites } from './cluster/announcing-store.js';
import { clusterRoutes } from './http/cluster-routes.js';
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
  /** How long a selected device that lost its connection may take to say hello again before it counts as dropped (default 3000 ms). */
  reconnectGraceMs?: number;
  /** Bytes of device uploads in flight at once (default 32 MiB): bounds transport memory whatever the number of devices. */
  uploadBudgetBytes?: number;
  /** Messages one device connection may send: burst and sustained rate (default 100 / 50 per s). */
  deviceRateLimit?: { burst: number; perSecond: number };
  /** Largest socket.io message, bytes: the transport's last guard (plans set smaller per-update limits). */
  maxMessageBytes?: number;
  /** Largest REST body, bytes. */
  bodyLimit?: number;
  /** Serve /metrics without a token (default: a viewer or admin token is needed). */
  publicMetrics?: boolean;
  /** Node process metrics in /metrics (default true). */
  processMetrics?: boolean;
  /** Failed authentications allowed per client address and window before 429 (false: no limit). Default 30 per minute. */
  authRateLimit?: { max: number; timeWindowMs: number } | false;
  /** Model serving: memory bound, default batching, payload sampling (see ServingOptions). */
  serving?: ServingOptions;
  /** Inference and bandit feedback without a token (OIP /v2 and TF Serving /v1 routes). */
  publicInference?: boolean;
  /** TLS: PEM certificate chain and key; the REST API and socket.io are then served over HTTPS. */
  https?: { cert: string | Buffer; key: string | Buffer };
  /** Run as one node of a cluster coordinated through Redis (docs/cluster.md). */
  cluster?: ClusterOptions;
}

export interface Flotilla {
  coordinator: Coordinator;
  registry: Registry;
  store: Store;
  blobs: BlobStore;
  io: IOServer<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
  deviceToken: string;
  adminToken: string;
  authenticator: Authenticator;
  metrics: FlotillaMetrics;
  serving: Serving;
  /** This node's cluster membership (cluster mode only). */
  cluster: ClusterNode | null;
  /** Every route registered, with the roles its guard admits (empty for public routes). */
  routes: RouteInfo[];
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
  const { blobs } = storage;
  // Cluster mode: serving-relevant writes are announced to the other nodes (set once the node is up).
  let announce: ((what: string) => void) | null = null;
  const store = opts.cluster ? announceServingWrites(storage.store, (w) => announce?.(w)) : storage.store;
  if (opts.store && opts.blobs) await store.init(); // openStorage initialises the stores it opens
  const deviceToken = opts.deviceToken ?? randomBytes(24).toString('base64url');
  const adminToken = opts.adminToken ?? randomBytes(24).toString('base64url');
  const authenticator = new Authenticator({ store, adminToken, deviceToken });
  const auth: { authenticate: Authenticator['authenticate']; throttle?: AuthThrottle } = { authenticate: (t) => authenticator.authenticate(t) };

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 8 * 1024 * 1024,
    frameworkErrors,
    ...(opts.https ? { https: opts.https } : {}),
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  app.decorateRequest('principal', null);
  const routes = collectRoutes(app);
  const authLimit = opts.authRateLimit ?? { max: 30, timeWindowMs: 60_000 };
  if (authLimit) {
    await app.register(rateLimit, { global: false });
    const limiter = app.createRateLimit({ max: authLimit.max, timeWindow: authLimit.timeWindowMs });
    auth.throttle = {
      async check(req) {
        const r = await limiter(req, { increment: false });
        if (!r.isAllowed && r.remaining <= 0) throw new AppError('FL_ERR_HTTP_RATE_LIMITED', { retryAfterSeconds: r.ttlInSeconds });
      },
      async fail(req) {
        await limiter(req);
      },
    };
  }
  await installOpenApi(app, { publicUrls: [...(opts.publicMetrics ? ['/metrics'] : []), ...(opts.publicInference ? INFERENCE_PUBLIC_ROUTES : [])], version: '0.1.0' });

  const registry = new Registry(store, blobs, { ...opts.registry, evaluator: opts.centralEvaluator });
  const coordinator = new Coordinator({
    store,
    registry,
    logger: app.log,
    evaluator: opts.centralEvaluator,
    uploadBudgetBytes: opts.uploadBudgetBytes,
    reconnectGraceMs: opts.reconnectGraceMs,
    authenticateDevice: (token, taskId) => authenticator.authenticateDevice(token, taskId),
  });
  const cluster = opts.cluster ? await ClusterNode.open(opts.cluster, coordinator, store, app.log) : null;
  await coordinator.init();
  // In a cluster, serving learns of new versions and deployment changes from Redis, not by polling.
  const serving = new Serving({ store, registry, backend: () => resolveBackend('node'), logger: app.log }, cluster ? { ...opts.serving, warmIntervalMs: 0 } : opts.serving);
  await serving.start();

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

  if (cluster) {
    cluster.attach(io);
    announce = (w) => cluster.announceServing(w);
    cluster.onServingChange = () => void serving.syncDeployments().then(() => serving.refreshAliases());
  }

  const metrics = new FlotillaMetrics(coordinator, { processMetrics: opts.processMetrics });
  const flotilla: Flotilla = { coordinator, registry, store, blobs, io, deviceToken, adminToken, authenticator, metrics, serving, cluster, routes };
  app.decorate('flotilla', flotilla);

  await app.register(healthRoutes, { store, ready: () => true });
  await app.register(registryRoutes, { store, blobs, auth, registry });
  await app.register(tasksRoutes, { coordinator, store, auth });
  await app.register(clientsRoutes, { coordinator, store, auth });
  await app.register(tokensRoutes, { coordinator, store, auth, authenticator });
  await app.register(metricsRoutes, { metrics, auth, public: opts.publicMetrics ?? false });
  await app.register(servingRoutes, { serving, auth, publicInference: opts.publicInference ?? false });
  const singleNodeView = async () => ({
    mode: 'single',
    node: 'local',
    nodes: [{ id: 'local', self: true, devices: coordinator.sessions.size, leads: coordinator.listRunners().map((r) => r.id), heartbeatAt: Date.now() }],
    tasks: coordinator.listRunners().map((r) => ({ id: r.id, leader: 'local' })),
  });
  await app.register(clusterRoutes, { auth, view: cluster ? () => cluster.view() : singleNodeView });

  app.addHook('preClose', async () => {
    stopGateway();
    await coordinator.close();
    io.local.disconnectSockets(true);
  });
  app.addHook('onClose', async () => {
    await new Promise<void>((resolve) => io.close(() => resolve()));
    await cluster?.close();
    metrics.close();
    await storage.close();
  });
  return app as unknown as FlotillaApp;
}
