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
    /** Offer devices the HTTP report upload channel (docs/protocol.md, section 9). */
    reportUploads: z.boolean().default(true),
    /** Which receiver reads report uploads: 'fastify' (the route, default) or 'direct' (the strict reader before Node's http parser; no measured gain yet, docs/cluster.md); TLS always uses the route. */
    reportReceiver: z.enum(['direct', 'fastify']).default('fastify'),
    /**
     * Proxies to believe about the client address (X-Forwarded-For): 'true', a hop count, or a
     * comma-separated list of proxy addresses/CIDRs ('loopback', 'uniquelocal'...). Off by default.
     */
    trustProxy: z
      .string()
      .min(1)
      .transform((v): boolean | number | string => (v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v))
      .default(false),
    /** Largest update a task plan may ask for, bytes; the device socket message cap derives from it. */
    maxUpdateBytes: z.coerce.number().int().min(1024).max(1 << 30).default(64 * 1024 * 1024),
    /** Device ids one credential may enrol (docs/api.md, "Devices"). */
    maxDevicesPerToken: z.coerce.number().int().min(1).default(10_000),
    /** Days after which the record of a device not seen is deleted; 0 keeps records for ever. */
    clientRetentionDays: z.coerce.number().min(0).max(36_500).default(90),
    /** Largest model upload (POST /api/v1/models/{name}/versions), bytes. */
    maxUploadBytes: z.coerce.number().int().min(1024).max(2 ** 50).default(2 * 1024 ** 3),
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
      'no-report-uploads': { type: 'boolean' },
      'report-receiver': { type: 'string' },
      'trust-proxy': { type: 'string' },
      'max-update-bytes': { type: 'string' },
      'max-devices-per-token': { type: 'string' },
      'client-retention-days': { type: 'string' },
      'max-upload-bytes': { type: 'string' },
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
    maxUploadBytes: values['max-upload-bytes'] ?? env.FLOTILLA_MAX_UPLOAD_BYTES,
    reportUploads: values['no-report-uploads'] ? false : env.FLOTILLA_REPORT_UPLOADS === undefined ? undefined : !['0', 'false'].includes(env.FLOTILLA_REPORT_UPLOADS),
    reportReceiver: values['report-receiver'] ?? env.FLOTILLA_REPORT_RECEIVER,
    clusterRedisUrl: values['cluster-redis-url'] ?? env.FLOTILLA_CLUSTER_REDIS_URL,
    clusterNodeId: values['cluster-node-id'] ?? env.FLOTILLA_CLUSTER_NODE_ID,
    clusterLeaseMs: values['cluster-lease-ms'] ?? env.FLOTILLA_CLUSTER_LEASE_MS,
    publicInference: values['public-inference'] ?? (env.FLOTILLA_PUBLIC_INFERENCE === undefined ? undefined : env.FLOTILLA_PUBLIC_INFERENCE === '1' || env.FLOTILLA_PUBLIC_INFERENCE === 'true'),
    trustProxy: values['trust-proxy'] ?? env.FLOTILLA_TRUST_PROXY,
    maxUpdateBytes: values['max-update-bytes'] ?? env.FLOTILLA_MAX_UPDATE_BYTES,
    maxDevicesPerToken: values['max-devices-per-token'] ?? env.FLOTILLA_MAX_DEVICES_PER_TOKEN,
    clientRetentionDays: values['client-retention-days'] ?? env.FLOTILLA_CLIENT_RETENTION_DAYS,
  };
  const parsed = ServeConfigSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== '')));
  if (!parsed.success) {
    throw new AppError('FL_ERR_CONFIG_INVALID', { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  return parsed.data;
}
