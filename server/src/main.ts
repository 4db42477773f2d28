/** CLI entry of `flotilla`. Only argument handling and process wiring live here; the app is built by app.ts. */
import { readFileSync } from 'node:fs';
import { resolveBackend } from '@flotilla/model';
import { buildApp } from './app.js';
import { ADMIN_COMMANDS, ADMIN_USAGE, runAdminCli } from './cli/admin-cli.js';
import { parseServeConfig } from './config.js';
import { AppError } from './errors.js';
import { loadOrCreateSecret } from './secret-file.js';
import { takeRole } from './roles/role.js';
import { runServingReplica, SERVING_USAGE } from './roles/serving-cli.js';
import { runSidecar, SIDECAR_USAGE } from './cli/sidecar.js';

const USAGE = `usage: flotilla serve [--role all|coordinator] [--port N] [--host H] [--data-dir DIR] [--mongodb-url URL] [--log-level L]
                     [--tls-cert FILE --tls-key FILE] [--public-metrics] [--public-inference] [--no-report-uploads] [--report-receiver direct|fastify]
                     [--trust-proxy true|HOPS|ADDRS] [--max-update-bytes N]
                     [--max-devices-per-token N] [--client-retention-days D]
                     [--cluster-redis-url redis://HOST:6379 [--cluster-node-id ID] [--cluster-lease-ms MS]]

env: FLOTILLA_ADMIN_TOKEN, FLOTILLA_DEVICE_TOKEN, FLOTILLA_MONGODB_URL, FLOTILLA_DATA_DIR, FLOTILLA_PORT, FLOTILLA_HOST,
     FLOTILLA_TLS_CERT, FLOTILLA_TLS_KEY, FLOTILLA_PUBLIC_METRICS, FLOTILLA_PUBLIC_INFERENCE, FLOTILLA_REPORT_UPLOADS (0: no upload channel), FLOTILLA_REPORT_RECEIVER,
     FLOTILLA_MAX_DEVICES_PER_TOKEN, FLOTILLA_CLIENT_RETENTION_DAYS,
     FLOTILLA_CLUSTER_REDIS_URL, FLOTILLA_CLUSTER_NODE_ID, FLOTILLA_CLUSTER_LEASE_MS

${SERVING_USAGE}

${SIDECAR_USAGE}

${ADMIN_USAGE}`;

async function serve(args: string[]): Promise<void> {
  const { role, argv } = takeRole(args, process.env);
  if (role === 'serving') return runServingReplica(argv, process.env);
  const cfg = parseServeConfig(argv, process.env);
  const admin = cfg.adminToken ? { token: cfg.adminToken, path: null, created: false } : loadOrCreateSecret(cfg.dataDir, 'admin-token');
  const device = cfg.deviceToken ? { token: cfg.deviceToken, path: null, created: false } : loadOrCreateSecret(cfg.dataDir, 'device-token');
  for (const s of [admin, device]) if ('warning' in s && s.warning) process.stderr.write(`flotilla: WARNING: ${s.warning}\n`);
  // Pick the tfjs backend before anything builds a model (presets, serving): once, logged.
  await resolveBackend('node', cfg.logLevel === 'silent' ? undefined : console);
  const app = await buildApp({
    dataDir: cfg.mongodbUrl ? undefined : cfg.dataDir,
    mongodbUrl: cfg.mongodbUrl,
    adminToken: admin.token,
    deviceToken: device.token,
    logger: { level: cfg.logLevel },
    inference: role !== 'coordinator',
    publicMetrics: cfg.publicMetrics,
    publicInference: cfg.publicInference,
    reportUploads: cfg.reportUploads,
    reportReceiver: cfg.reportReceiver,
    trustProxy: cfg.trustProxy,
    maxUpdateBytes: cfg.maxUpdateBytes,
    maxDevicesPerToken: cfg.maxDevicesPerToken,
    clientRetention: cfg.clientRetentionDays > 0 ? { maxAgeMs: cfg.clientRetentionDays * 86_400_000 } : false,
    maxUploadBytes: cfg.maxUploadBytes,
    ...(cfg.clusterRedisUrl ? { cluster: { redisUrl: cfg.clusterRedisUrl, nodeId: cfg.clusterNodeId, leaseMs: cfg.clusterLeaseMs } } : {}),
    ...(cfg.tlsCert && cfg.tlsKey ? { https: { cert: readFileSync(cfg.tlsCert), key: readFileSync(cfg.tlsKey) } } : {}),
  });
  if (admin.path) app.log.info(`admin token ${admin.created ? 'generated' : 'read'}: ${admin.path}`);
  if (device.path) app.log.info(`device token ${device.created ? 'generated' : 'read'}: ${device.path}`);
  const address = await app.listen({ port: cfg.port, host: cfg.host });
  if (app.flotilla.cluster) app.flotilla.cluster.url = address;
  // Machine-readable line for supervisors and tests that start us on port 0.
  process.stdout.write(`flotilla listening ${address}\n`);
  app.log.info(`operator console: ${address}/ui/`);
  let closing = false;
  const shutdown = (sig: string) => {
    if (closing) return;
    closing = true;
    app.log.info(`${sig}: closing`);
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'serve') return serve(rest);
  if (cmd === 'sidecar') return runSidecar(rest, process.env);
  if ((ADMIN_COMMANDS as readonly string[]).includes(cmd ?? '')) {
    const code = await runAdminCli([cmd!, ...rest], process.env, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) });
    process.exitCode = code;
    return;
  }
  process.stderr.write(`${USAGE}\n`);
  process.exit(cmd === undefined || cmd === '--help' || cmd === '-h' ? 0 : 2);
}

main().catch((err) => {
  if (err instanceof AppError) process.stderr.write(`flotilla: ${err.code}: ${err.message}${err.details ? ` ${JSON.stringify(err.details)}` : ''}\n`);
  else process.stderr.write(`flotilla: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof AppError && err.code === 'FL_ERR_CONFIG_INVALID' ? 2 : 1);
});
