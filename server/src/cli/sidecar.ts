import { parseArgs } from 'node:util';
import { AppError } from '../errors.js';
import { HttpRegistrySource } from '../roles/http-registry-source.js';
import { defaultEdgeId, parseModelRef, positiveInt, registryToken, runEdge } from '../roles/run-edge.js';
import { UpstreamClient } from '../roles/upstream-client.js';

export const SIDECAR_USAGE = `usage: flotilla sidecar --registry-url URL --model NAME@ALIAS [--port N] [--host H] [--cache-dir DIR]
                       [--registry-token-file FILE] [--sync-interval-ms N] [--report-interval-ms N] [--id ID]
                       [--payload-sample-rate R]
                       [--no-live] [--log-level L]
  serves one model beside an application on localhost (OIP /v2 and TF Serving /v1 routes), keeps it in
  step with the registry, and keeps serving the last synced version while the registry is away
env: FLOTILLA_REGISTRY_TOKEN (a serving token)`;

/** `flotilla sidecar ...` */
export async function runSidecar(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'registry-url': { type: 'string' },
        'registry-token-file': { type: 'string' },
        model: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'cache-dir': { type: 'string' },
        'sync-interval-ms': { type: 'string' },
        'report-interval-ms': { type: 'string' },
        id: { type: 'string' },
        'payload-sample-rate': { type: 'string' },
        'no-live': { type: 'boolean' },
        'log-level': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new AppError('FL_ERR_CONFIG_INVALID', { why: (err as Error).message, usage: SIDECAR_USAGE });
  }
  const url = values['registry-url'] ?? env.FLOTILLA_REGISTRY_URL;
  if (!url || !/^https?:\/\/\S+$/.test(url)) throw new AppError('FL_ERR_CONFIG_INVALID', { option: '--registry-url', value: url ?? null, rule: 'an http:// or https:// URL', usage: SIDECAR_USAGE });
  if (!values.model) throw new AppError('FL_ERR_CONFIG_INVALID', { option: '--model', why: 'required (NAME@ALIAS)', usage: SIDECAR_USAGE });
  const pin = parseModelRef(values.model, '--model');
  const upstream = new UpstreamClient(url, registryToken(values['registry-token-file'], env));
  await runEdge(
    {
      kind: 'sidecar',
      id: values.id ?? defaultEdgeId(),
      source: new HttpRegistrySource(upstream),
      upstream,
      pin,
      preload: [pin],
      syncIntervalMs: positiveInt(values['sync-interval-ms'], 2000, '--sync-interval-ms', 50),
      reportIntervalMs: positiveInt(values['report-interval-ms'], 10_000, '--report-interval-ms'),
      cacheDir: values['cache-dir'] ?? './flotilla-sidecar-cache',
      // Beside the application, on loopback: its callers are the app's own processes.
      publicInference: true,
      publicMetrics: true,
      live: !values['no-live'],
      logger: { level: values['log-level'] ?? env.FLOTILLA_LOG_LEVEL ?? 'warn' },
      ...(values['payload-sample-rate'] !== undefined ? { serving: { payloadSampleRate: Number(values['payload-sample-rate']) } } : {}),
    },
    { port: positiveInt(values.port, 9000, '--port'), host: values.host ?? '127.0.0.1' },
  );
}
