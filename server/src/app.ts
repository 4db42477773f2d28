import Fastify, { type FastifyInstance } from 'fastify';
import { Server as IOServer } from 'socket.io';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ClientToServerEvents, ServerToClientEvents } from '@flotilla/protocol';
import { Authenticator } from './auth/authenticator.js';
import { argSafeRandomText } from './auth/tokens.js';
import { Coordinator, DEFAULT_MAX_UPDATE_BYTES, type ClientRetention } from './coordinator/coordinator.js';
import type { CentralEvaluator } from './coordinator/deps.js';
import { attachGateway } from './coordinator/gateway.js';
import type { SocketData } from './coordinator/sessions.js';
import { INFERENCE_PUBLIC_ROUTES, type AuthConfig } from './http/auth.js';
import { FailureThrottle } from './auth/failure-throttle.js';
import { clientAddressResolver, trustFunction, type TrustProxy } from './auth/client-address.js';
import { limitedParser } from './coordinator/message-limits.js';
import { clientsRoutes } from './http/clients-routes.js';
import { installErrorHandling } from './http/error-handler.js';
import { frameworkErrors } from './http/framework-errors.js';
import { metricsRoutes } from './http/metrics-routes.js';
import { installOpenApi } from './http/openapi.js';
import { collectRoutes, type RouteInfo } from './http/route-table.js';
import { tokensRoutes } from './http/tokens-routes.js';
import { FlotillaMetrics } from './metrics/flotilla-metrics.js';
import { healthRoutes } from './http/health-routes.js';
import { ROUTER_MAX_PARAM_LENGTH } from './http/ids.js';
import { registryRoutes } from './http/registry-routes.js';
import { tasksRoutes } from './http/tasks-routes.js';
import { modelUploadRoutes } from './http/model-upload-routes.js';
import { reportUploadRoutes } from './http/report-upload-routes.js';
import { installUploadReceiver, type UploadReceiverOptions } from './http/upload-receiver.js';
import { servingRoutes } from './http/serving-routes.js';
import { eventsRoutes } from './http/events-routes.js';
import { edgeRoutes } from './http/edge-routes.js';
import { registerServingMetrics } from './serving/serving-metrics.js';
import { uiRoutes } from './http/ui-routes.js';
import { Serving, type ServingOptions } from './serving/serving.js';
import { resolveBackend } from '@flotilla/model';
import type { BlobStore } from './store/blob-store.js';
import { openStorage, type Storage } from './store/open-storage.js';
import { guardStorage } from './store/storage-health.js';
import { SqliteStore } from './store/sqlite-store.js';
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
  /** Offer devices the HTTP report upload channel (default true); false: reports over the socket only. */
  reportUploads?: boolean;
  /**
   * Which receiver reads report uploads (docs/cluster.md, "The report upload channel"): 'fastify'
   * (default), the fastify route; 'direct', a strict HTTP/1.1 reader on the same port that takes
   * the upload requests before Node's http parser (opt-in: it has not measured cheaper on a quiet
   * machine). With `https` the fastify route always.
   */
  reportReceiver?: 'direct' | 'fastify';
  /** The direct receiver's limits: head size (8 KiB), head timeout (10 s), body idle timeout (30 s). */
  reportReceiverLimits?: Pick<UploadReceiverOptions, 'maxHeadBytes' | 'headerTimeoutMs' | 'bodyIdleTimeoutMs'>;
  /** Bytes of device uploads in flight at once (default 32 MiB): bounds transport memory whatever the number of devices. */
  uploadBudgetBytes?: number;
  /** Messages one device connection may send: burst and sustained rate (default 100 / 50 per s). */
  deviceRateLimit?: { burst: number; perSecond: number };
  /**
   * Largest encoded update (bytes) any task plan may ask for (`plan.maxUpdateBytes` above it is
   * refused); default 64 MiB. The socket transport cap is this plus the report envelope.
   */
  maxUpdateBytes?: number;
  /** A connection that has not completed an accepted handshake by then is closed (default 10 s). */
  unauthenticatedTimeoutMs?: number;
  /**
   * Which proxies to believe about the client address (X-Forwarded-For), fastify's `trustProxy`:
   * true, a hop count, or proxy addresses/CIDRs. Used by REST and the device handshake alike
   * (the failure throttle is per client address). Default false: the peer address.
   */
  trustProxy?: TrustProxy;
  /** Device ids one credential (an enrolment token, or the bootstrap device token) may enrol; default 10,000. */
  maxDevicesPerToken?: number;
  /** Retention of client records: those of devices not seen for maxAgeMs are deleted at start-up and every sweepIntervalMs (default 90 days, hourly); false keeps them. */
  clientRetention?: ClientRetention | false;
  /** Largest REST body, bytes. */
  bodyLimit?: number;
  /** Largest model upload (a streamed tar, not bound by bodyLimit), bytes. Default 2 GiB. */
  maxUploadBytes?: number;
  /** Serve /metrics without a token (default: a viewer or admin token is needed). */
  publicMetrics?: boolean;
  /** Node process metrics in /metrics (default true). */
  processMetrics?: boolean;
  /** Failed authentications (REST and device handshakes together) allowed per client address and window before 429 FL_ERR_AUTH_THROTTLED (false: no limit). Default 30 per minute. */
  authRateLimit?: { max: number; timeWindowMs: number } | false;
  /** Model serving: memory bound, default batching, payload sampling (see ServingOptions). */
  serving?: ServingOptions;
  /** Inference and bandit feedback without a token (OIP /v2 and TF Serving /v1 routes). */
  publicInference?: boolean;
  /** Serve the inference routes (OIP /v2, TF Serving /v1/models); false for `--role coordinator` (docs/deploy.md). Default true. */
  inference?: boolean;
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
  const storage: Storage =
    opts.store && opts.blobs
      ? { ...guardStorage(opts.store, opts.blobs, opts.store instanceof SqliteStore), close: async () => (await opts.store!.close(), await opts.blobs!.close()) }
      : await openStorage({ dataDir: opts.dataDir, mongodbUrl: opts.mongodbUrl, sharedDataDir: opts.cluster !== undefined });
  const { blobs } = storage;
  // Cluster mode: serving-relevant writes are announced to the other nodes (set once the node is up).
  let announce: ((what: string) => void) | null = null;
  const store = opts.cluster ? announceServingWrites(storage.store, (w) => announce?.(w)) : storage.store;
  if (opts.store && opts.blobs) await store.init(); // openStorage initialises the stores it opens
  const deviceToken = opts.deviceToken ?? argSafeRandomText(24);
  const adminToken = opts.adminToken ?? argSafeRandomText(24);
  const authenticator = new Authenticator({ store, adminToken, deviceToken });
  const authLimit = opts.authRateLimit ?? { max: 30, timeWindowMs: 60_000 };
  const throttle = authLimit ? new FailureThrottle({ max: authLimit.max, windowMs: authLimit.timeWindowMs }) : undefined;
  const auth: AuthConfig = { authenticate: (t) => authenticator.authenticate(t), ...(throttle ? { throttle } : {}) };

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 8 * 1024 * 1024,
    frameworkErrors,
    // Every id the API accepts fits in a path parameter (ids.ts).
    routerOptions: { maxParamLength: ROUTER_MAX_PARAM_LENGTH },
    ...(opts.trustProxy ? { trustProxy: trustFunction(opts.trustProxy) } : {}),
    ...(opts.https ? { https: opts.https } : {}),
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  app.decorateRequest('principal', null);
  const routes = collectRoutes(app);
  await installOpenApi(app, { publicUrls: [...(opts.publicMetrics ? ['/metrics'] : []), ...(opts.publicInference ? INFERENCE_PUBLIC_ROUTES : [])], version: '0.1.0' });

  // Alias moves made through this process reach serving at once (serving is created just below),
  // and replicas and sidecars listening on the live channel (a `model` frame, see live-feed.ts).
  const modelMoved = (model: string) => (serving.published(model), coordinator.events.emit('model', { model }));
  const registry = new Registry(store, blobs, { ...opts.registry, evaluator: opts.centralEvaluator, onAliasChanged: (model) => modelMoved(model) });
  // Created before the coordinator so that its publish hook reaches serving at once (no poll delay).
  // In a cluster, serving learns of new versions and deployment changes from Redis, not by polling.
  const serving = new Serving({ store, registry, backend: () => resolveBackend('node'), logger: app.log }, opts.cluster ? { ...opts.serving, warmIntervalMs: 0 } : opts.serving);
  const coordinator = new Coordinator({
    store,
    registry,
    logger: app.log,
    evaluator: opts.centralEvaluator,
    uploadBudgetBytes: opts.uploadBudgetBytes,
    reportUploads: opts.reportUploads,
    reconnectGraceMs: opts.reconnectGraceMs,
    authenticateDevice: (token, taskId) => authenticator.authenticateDevice(token, taskId),
    onPublished: async (v) => void modelMoved(v.model),
    maxUpdateBytes: opts.maxUpdateBytes,
    maxDevicesPerToken: opts.maxDevicesPerToken,
    clientRetention: opts.clientRetention,
  });
  const cluster = opts.cluster ? await ClusterNode.open(opts.cluster, coordinator, store, app.log) : null;
  await coordinator.init();
  await serving.start();

  // Socket message limits (docs/api.md, "Device connection"): small events, a report up to what its fit:ready was granted.
  const reportEnvelopeBytes = 16 * 1024;
  const limits = { maxMessageBytes: (opts.maxUpdateBytes ?? DEFAULT_MAX_UPDATE_BYTES) + reportEnvelopeBytes, maxEventBytes: 16 * 1024, reportEnvelopeBytes };
  const io: Flotilla['io'] = new IOServer(app.server, {
    maxHttpBufferSize: limits.maxMessageBytes,
    connectTimeout: opts.unauthenticatedTimeoutMs ?? 10_000,
    parser: limitedParser({ preAuthBytes: 8 * 1024, preAuthPackets: 4 }),
    serveClient: false,
    transports: ['websocket', 'polling'],
    // Reports are float bytes that barely compress; deflating them would cost more CPU than the
    // socket (engine.io's default too, stated here as a contract: docs/performance.md).
    perMessageDeflate: false,
  });
  const stopGateway = attachGateway(io, coordinator, {
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 5_000,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 30_000,
    rateLimit: opts.deviceRateLimit ?? { burst: 100, perSecond: 50 },
    limits,
    handshake: { throttle: throttle ?? null, clientAddress: clientAddressResolver(opts.trustProxy) },
  });

  if (cluster) {
    cluster.attach(io);
    announce = (w) => cluster.announceServing(w);
    cluster.onServingChange = () => void serving.syncDeployments().then(() => serving.refreshAliases());
  }

  const metrics = new FlotillaMetrics(coordinator, { processMetrics: opts.processMetrics });
  const flotilla: Flotilla = { coordinator, registry, store, blobs, io, deviceToken, adminToken, authenticator, metrics, serving, cluster, routes };
  app.decorate('flotilla', flotilla);
  // flotilla_serving_queue_depth and friends (docs/deploy.md), in the same registry.
  registerServingMetrics(metrics.registry, serving);

  if (storage.swept?.removed) app.log.info(storage.swept, 'removed blobs no version references (left by failed commits)');
  await app.register(healthRoutes, { store, storage: storage.health, ready: () => true });
  await app.register(registryRoutes, { store, blobs, auth, registry });
  await app.register(tasksRoutes, { coordinator, store, auth });
  await app.register(modelUploadRoutes, { registry, auth, maxUploadBytes: opts.maxUploadBytes ?? 2 * 1024 ** 3 });
  await app.register(reportUploadRoutes, { coordinator });
  await app.register(clientsRoutes, { coordinator, store, auth });
  await app.register(tokensRoutes, { coordinator, store, auth, authenticator });
  await app.register(metricsRoutes, { metrics, auth, public: opts.publicMetrics ?? false });
  await app.register(servingRoutes, { serving, auth, publicInference: opts.publicInference ?? false, inference: opts.inference ?? true });
  const singleNodeView = async () => ({
    mode: 'single',
    node: 'local',
    nodes: [{ id: 'local', self: true, devices: coordinator.sessions.size, leads: coordinator.listRunners().map((r) => r.id), heartbeatAt: Date.now() }],
    tasks: coordinator.listRunners().map((r) => ({ id: r.id, leader: 'local' })),
  });
  await app.register(clusterRoutes, { auth, view: cluster ? () => cluster.view() : singleNodeView });
  await app.register(eventsRoutes, { coordinator, auth });
  await app.register(edgeRoutes, { store, auth, payloadCapPerModel: serving.payloads.options.capPerModel });
  await app.register(uiRoutes);

  // Opt-in: same port, same URLs, report uploads read before Node's http parser sees them (not with TLS).
  const receiver =
    opts.reportReceiver === 'direct' && !opts.https
      ? installUploadReceiver(app.server, { coordinator, log: app.log, maxBodyBytes: opts.maxUpdateBytes ?? DEFAULT_MAX_UPDATE_BYTES, ...opts.reportReceiverLimits })
      : null;

  app.addHook('preClose', async () => {
    stopGateway();
    await coordinator.close();
    receiver?.close();
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
