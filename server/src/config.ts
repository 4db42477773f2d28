import { parseArgs } from 'node:util';
import { z } from 'zod';
import { AppError } from './errors.js';

/**
 * `flotilla serve` configuration: flags win over environment variables, which win over defaults.
 * Parsed once at start-up; everything after trusts the result.
 */
export const ServeConfigSchema = z
  .object({
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    host: z.string().min(1).default('127.0.0.1'),
    dataDir: z.string().min(1).default('./flotilla-data'),
    // Multi-host replica-set URLs (mongodb://a:1,b:2/db?replicaSet=x) are not WHATWG URLs: check the scheme, let the driver parse the rest.
    mongodbUrl: z.string().regex(/^mongodb(\+srv)?:\/\/\S+$/, 'a mongodb:// or mongodb+srv:// URL').optional(),
    adminToken: z.string().min(16).optional(),
    deviceToken: z.string().min(16).optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** PEM files; both or neither. With them the API and device sockets are served over HTTPS. */
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    /** Serve /metrics without a token (for a scraper on a trusted network). */
    publicMetrics: z.boolean().default(false),
    publicInference: z.boolean().default(false),
    /** Cluster mode (docs/cluster.md): Redis for leases, membership, pub/sub and the socket.io adapter. */
    clusterRedisUrl: z.string().regex(/^rediss?:\/\/\S+$/, 'a redis:// or rediss:// URL').optional(),
    clusterNodeId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (at most 64)').optional(),
    clusterLeaseMs: z.coerce.number().int().min(200).max(600_000).default(5000),
  })
  .strict()
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { message: 'give both --tls-cert and --tls-key, or neither', path: ['tlsCert'] });
export type ServeConfig = z.infer<typeof ServeConfigSchema>;

export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv): ServeConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      'mongodb-url': { type: 'string' },
      'log-level': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'public-metrics': { type: 'boolean' },
      'public-inference': { type: 'boolean' },
      'cluster-redis-url': { type: 'string' },
      'cluster-node-id': { type: 'string' },
      'cluster-lease-ms': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const raw = {
    port: values.port ?? env.FLOTILLA_PORT,
    host: values.host ?? env.FLOTILLA_HOST,
    dataDir: values['data-dir'] ?? env.FLOTILLA_DATA_DIR,
    mongodbUrl: values['mongodb-url'] ?? env.FLOTILLA_MONGODB_URL,
    adminToken: env.FLOTILLA_ADMIN_TOKEN,
    deviceToken: env.FLOTILLA_DEVICE_TOKEN,
    logLevel: values['log-level'] ?? env.FLOTILLA_LOG_LEVEL,
    tlsCert: values['tls-cert'] ?? env.FLOTILLA_TLS_CERT,
    tlsKey: values['tls-key'] ?? env.FLOTILLA_TLS_KEY,
    publicMetrics: values['public-metrics'] ?? (env.FLOTILLA_PUBLIC_METRICS === undefined ? undefined : env.FLOTILLA_PUBLIC_METRICS === '1' || env.FLOTILLA_PUBLIC_METRICS === 'true'),
    clusterRedisUrl: values['cluster-redis-url'] ?? env.FLOTILLA_CLUSTER_REDIS_URL,
    clusterNodeId: values['cluster-node-id'] ?? env.FLOTILLA_CLUSTER_NODE_ID,
    clusterLeaseMs: values['cluster-lease-ms'] ?? env.FLOTILLA_CLUSTER_LEASE_MS,
    publicInference: values['public-inference'] ?? (env.FLOTILLA_PUBLIC_INFERENCE === undefined ? undefined : env.FLOTILLA_PUBLIC_INFERENCE === '1' || env.FLOTILLA_PUBLIC_INFERENCE === 'true'),
  };
  const parsed = ServeConfigSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== '')));
  if (!parsed.success) {
    throw new AppError('FL_ERR_CONFIG_INVALID', { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  return parsed.data;
}
