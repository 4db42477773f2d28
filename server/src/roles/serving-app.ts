import Fastify, { type FastifyInstance } from 'fastify';
import { Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { resolveBackend } from '@flotilla/model';
import type { Principal } from '../auth/authenticator.js';
import { FailureThrottle } from '../auth/failure-throttle.js';
import { AppError } from '../errors.js';
import { requireRole, type AuthConfig } from '../http/auth.js';
import { installErrorHandling } from '../http/error-handler.js';
import { frameworkErrors } from '../http/framework-errors.js';
import { ROUTER_MAX_PARAM_LENGTH } from '../http/ids.js';
import { inferenceRoutes } from '../http/inference-routes.js';
import { tfServingRoutes } from '../http/tfserving-routes.js';
import { Registry } from '../registry/registry.js';
import { registerServingMetrics } from '../serving/serving-metrics.js';
import { Serving, type ServingOptions } from '../serving/serving.js';
import { MemoryBlobStore } from '../store/memory-blob-store.js';
import { EdgeStore } from './edge-store.js';
import { LiveFollow } from './live-follow.js';
import { MirrorCache } from './mirror-cache.js';
import { RegistryMirror } from './registry-mirror.js';
import { RemoteAuthenticator } from './remote-auth.js';
import type { RegistrySource } from './registry-source.js';
import type { UpstreamClient } from './upstream-client.js';
import { UpstreamReporter } from './upstream-reporter.js';

export interface ModelRef {
  model: string;
  ref: string;
}

export interface ServingAppOptions {
  kind: 'replica' | 'sidecar';
  /** This process in upstream reports (pod name, host-pid). */
  id: string;
  source: RegistrySource;
  /** The coordinator over HTTP, when given: reports, token introspection, the live channel. */
  upstream?: UpstreamClient;
  /** Models to follow (replica; default every model). */
  models?: string[];
  /** The one model@ref a sidecar follows. */
  pin?: ModelRef;
  /** Loaded and warmed before /readyz answers 200 (the deployments' targets are, too). */
  preload: ModelRef[];
  syncIntervalMs: number;
  /** 0: no upstream reports. */
  reportIntervalMs: number;
  /** Keep the last synced versions on disk (mirror-cache.ts). */
  cacheDir?: string;
  /** Callers' tokens; absent: the upstream introspects them (or, without one, only public routes work). */
  authenticate?: (token: string) => Promise<Principal | null>;
  publicInference: boolean;
  publicMetrics: boolean;
  /** Follow the live channel (needs `upstream`). */
  live: boolean;
  logger?: boolean | Record<string, unknown>;
  serving?: ServingOptions;
}

export interface EdgeHandle {
  serving: Serving;
  mirror: RegistryMirror;
  reporter: UpstreamReporter | null;
  /** Resolves once ready (first sync or cache, preloads warmed); rejects on an error no retry can fix (a refused credential, an unknown model) when nothing was cached. */
  startup: Promise<void>;
  ready(): boolean;
  /** Cold start of each preloaded model (ms), once loaded. */
  coldStarts(): Array<ModelRef & { version: number; coldStartMs: number }>;
}

export type ServingApp = FastifyInstance & { edge: EdgeHandle };

/** Errors a retry cannot fix: the operator must change the configuration or the upstream. */
const FATAL = new Set(['FL_ERR_AUTH_INVALID_TOKEN', 'FL_ERR_AUTH_FORBIDDEN', 'FL_ERR_MODEL_NOT_FOUND', 'FL_ERR_ALIAS_NOT_FOUND', 'FL_ERR_VERSION_NOT_FOUND', 'FL_ERR_ALIAS_INVALID']);

/**
 * A serving-only process: a serving replica (`flotilla serve --role serving`) or a sidecar
 * (`flotilla sidecar`). It holds no training state and never writes the registry's store: a
 * RegistryMirror copies what it serves into a process-local store, and the usual Serving answers
 * the OIP and TF Serving routes from it. Contracts:
 *  - /readyz answers 503 until the first sync (or the disk cache) and every preload is loaded and
 *    warmed, then 200; /healthz answers 200 as soon as the process listens;
 *  - the mirror re-syncs every `syncIntervalMs` (and at once on a live-channel `model` frame);
 *    while the upstream is unreachable the last synced versions keep serving;
 *  - latency stats and sampled payloads go upstream every `reportIntervalMs` when there is one;
 *  - no admin route exists here: deployments, aliases and tokens are changed on coordinators.
 */
export async function buildServingApp(opts: ServingAppOptions): Promise<ServingApp> {
  const store = new EdgeStore();
  const blobs = new MemoryBlobStore();
  await store.init();
  const registry = new Registry(store, blobs, { variants: [], cacheBytes: 0 });
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 8 * 1024 * 1024, frameworkErrors, routerOptions: { maxParamLength: ROUTER_MAX_PARAM_LENGTH } }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  app.decorateRequest('principal', null);

  const serving = new Serving({ store, registry, backend: () => resolveBackend('node'), logger: app.log }, { payloadSampleRate: opts.kind === 'sidecar' ? 0.05 : 0.01, ...opts.serving });
  let ready = false;
  const mirror = new RegistryMirror({
    source: opts.source,
    local: { store, blobs },
    models: opts.models,
    pin: opts.pin,
    deployments: opts.kind === 'replica',
    ...(opts.cacheDir ? { cache: new MirrorCache(opts.cacheDir) } : {}),
    // A preloaded model's alias moves only once its new version is loaded and warmed here.
    beforeAliasMove: async (model, version) => {
      if (!ready || !opts.preload.some((p) => p.model === model)) return;
      await serving.cache.get(model, version).then(
        () => undefined,
        (err) => app.log.warn({ err, model, version }, 'edge: warming a version before its alias moves failed'),
      );
    },
    onModelChanged: (model) => serving.published(model),
    onDeploymentsChanged: () => void serving.syncDeployments(),
  });

  const remote = opts.upstream ? new RemoteAuthenticator(opts.upstream) : null;
  const authenticate = opts.authenticate ?? (remote ? (t: string) => remote.authenticate(t) : async () => null);
  const auth: AuthConfig = { authenticate, throttle: new FailureThrottle({ max: 30, windowMs: 60_000 }) };
  const metrics = new PromRegistry();
  collectDefaultMetrics({ register: metrics });
  registerServingMetrics(metrics, serving);
  const reporter = opts.upstream && opts.reportIntervalMs > 0 ? new UpstreamReporter({ client: opts.upstream, serving, store, mirror, source: opts.id, kind: opts.kind }, opts.reportIntervalMs) : null;
  const live = opts.upstream && opts.live ? new LiveFollow(opts.upstream, () => void mirror.sync().catch(() => undefined)) : null;
  const preloaded: Array<ModelRef & { version: number; coldStartMs: number }> = [];

  const status = () => ({
    kind: opts.kind,
    id: opts.id,
    ready,
    upstream: opts.source.describe,
    mirror: mirror.status,
    live: live ? live.connected : null,
    reporter: reporter?.status ?? null,
    pendingPayloads: store.pendingPayloads,
    droppedPayloads: store.droppedPayloads,
    preload: preloaded,
    models: serving.cache.list().map((m) => m.info()),
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) =>
    reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', synced: mirror.status.lastSyncAt !== null || mirror.status.restoredFromCache > 0, preload: preloaded, lastError: mirror.status.lastError }),
  );
  const guard = opts.publicMetrics ? {} : { preHandler: requireRole(auth, ['viewer']) };
  app.get('/metrics', guard, async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  app.get('/api/v1/edge/status', guard, async () => status());
  await app.register(inferenceRoutes, { serving, auth, publicInference: opts.publicInference });
  await app.register(tfServingRoutes, { serving, auth, publicInference: opts.publicInference });

  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const startup = (async () => {
    const restored = await mirror.restore();
    for (let attempt = 0; ; attempt++) {
      if (closed) throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'closed during start-up' });
      try {
        await mirror.sync();
        break;
      } catch (err) {
        const code = err instanceof AppError ? err.code : 'FL_ERR_INTERNAL';
        if (FATAL.has(code) && restored === 0) throw err;
        app.log.warn({ err }, restored > 0 ? 'edge: registry sync failed; serving the cached versions' : 'edge: registry sync failed; retrying');
        if (restored > 0) break;
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
      }
    }
    for (const p of opts.preload) {
      const version = await serving.resolveRef(p.model, p.ref, true);
      const served = await serving.cache.get(p.model, version);
      preloaded.push({ ...p, version, coldStartMs: Math.round(served.coldStartMs * 1000) / 1000 });
    }
    await serving.start();
    await serving.whenReady();
    timer = setInterval(() => void mirror.sync().catch((err) => app.log.warn({ err }, 'edge: registry sync failed; the last synced versions keep serving')), opts.syncIntervalMs);
    timer.unref();
    live?.start();
    reporter?.start();
    ready = true;
  })();
  startup.catch(() => undefined);

  app.addHook('preClose', async () => {
    closed = true;
    if (timer) clearInterval(timer);
    live?.close();
    await reporter?.close();
    await serving.close();
    await opts.source.close();
  });
  const edge: EdgeHandle = { serving, mirror, reporter, startup, ready: () => ready, coldStarts: () => [...preloaded] };
  app.decorate('edge', edge);
  return app as unknown as ServingApp;
}
