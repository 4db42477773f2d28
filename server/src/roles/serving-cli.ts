import { parseArgs } from 'node:util';
import { Authenticator } from '../auth/authenticator.js';
import { AppError } from '../errors.js';
import { HttpRegistrySource } from './http-registry-source.js';
import { openReadOnlySource } from './read-only-storage.js';
import { defaultEdgeId, parseModelRef, positiveInt, registryToken, runEdge } from './run-edge.js';
import type { RegistrySource } from './registry-source.js';
import { UpstreamClient } from './upstream-client.js';

export const SERVING_USAGE = `usage: flotilla serve --role serving (--registry-url URL | --mongodb-url URL | --data-dir DIR) [--port N] [--host H]
                     [--registry-token-file FILE] [--models A,B] [--preload NAME@REF,...] [--sync-interval-ms N]
                     [--report-interval-ms N] [--cache-dir DIR] [--id ID] [--public-inference] [--public-metrics]
                     [--no-live] [--log-level L]
  a serving replica: follows the registry (over HTTP with a serving token, or the shared store read-only),
  serves OIP and TF Serving routes, never writes the store (docs/deploy.md)
env: FLOTILLA_REGISTRY_TOKEN (the serving token), FLOTILLA_ADMIN_TOKEN (store mode: the coordinators' admin token)`;

/** `flotilla serve --role serving ...` (argv without `--role serving`). */
export async function runServingReplica(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'registry-url': { type: 'string' },
        'registry-token-file': { type: 'string' },
        'mongodb-url': { type: 'string' },
        'data-dir': { type: 'string' },
        models: { type: 'string' },
        preload: { type: 'string' },
        'sync-interval-ms': { type: 'string' },
        'report-interval-ms': { type: 'string' },
        'cache-dir': { type: 'string' },
        id: { type: 'string' },
        'public-inference': { type: 'boolean' },
        'public-metrics': { type: 'boolean' },
        'no-live': { type: 'boolean' },
        'log-level': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new AppError('FL_ERR_CONFIG_INVALID', { why: (err as Error).message, usage: SERVING_USAGE });
  }
  const url = values['registry-url'] ?? env.FLOTILLA_REGISTRY_URL;
  const mongodbUrl = values['mongodb-url'] ?? env.FLOTILLA_MONGODB_URL;
  const dataDir = values['data-dir'];
  if (!url && !mongodbUrl && !dataDir) throw new AppError('FL_ERR_CONFIG_INVALID', { why: 'a serving replica needs --registry-url, --mongodb-url or --data-dir', usage: SERVING_USAGE });
  if (url && !/^https?:\/\/\S+$/.test(url)) throw new AppError('FL_ERR_CONFIG_INVALID', { option: '--registry-url', value: url, rule: 'an http:// or https:// URL' });
  const token = registryToken(values['registry-token-file'], env);
  const upstream = url ? new UpstreamClient(url, token) : undefined;
  let source: RegistrySource;
  let authenticate;
  if (mongodbUrl || dataDir) {
    const s = await openReadOnlySource({ mongodbUrl, dataDir });
    source = s;
    // Callers' tokens are checked against the shared store's token records (read only).
    if (!upstream) {
      const a = new Authenticator({ store: s.store, adminToken: env.FLOTILLA_ADMIN_TOKEN ?? cryptoRandom(), deviceToken: cryptoRandom() });
      authenticate = (t: string) => a.authenticate(t);
    }
  } else source = new HttpRegistrySource(upstream!);
  const models = values.models ? values.models.split(',').map((m) => parseModelRef(m, '--models').model) : undefined;
  const preload = values.preload ? values.preload.split(',').map((m) => parseModelRef(m, '--preload')) : [];
  await runEdge(
    {
      kind: 'replica',
      id: values.id ?? defaultEdgeId(),
      source,
      upstream,
      models,
      preload,
      syncIntervalMs: positiveInt(values['sync-interval-ms'] ?? env.FLOTILLA_SYNC_INTERVAL_MS, 2000, '--sync-interval-ms', 50),
      reportIntervalMs: positiveInt(values['report-interval-ms'], 10_000, '--report-interval-ms'),
      cacheDir: values['cache-dir'],
      ...(authenticate ? { authenticate } : {}),
      publicInference: values['public-inference'] ?? env.FLOTILLA_PUBLIC_INFERENCE === 'true',
      publicMetrics: values['public-metrics'] ?? env.FLOTILLA_PUBLIC_METRICS === 'true',
      live: !values['no-live'],
      logger: { level: values['log-level'] ?? env.FLOTILLA_LOG_LEVEL ?? 'info' },
    },
    { port: positiveInt(values.port ?? env.FLOTILLA_PORT, 8080, '--port'), host: values.host ?? env.FLOTILLA_HOST ?? '127.0.0.1' },
  );
}

function cryptoRandom(): string {
  return globalThis.crypto.randomUUID() + globalThis.crypto.randomUUID();
}
