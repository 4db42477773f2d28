import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolveBackend } from '@flotilla/model';
import { AppError } from '../errors.js';
import { buildServingApp, type ModelRef, type ServingAppOptions } from './serving-app.js';

/** `name@ref` (ref defaults to `latest`); FL_ERR_CONFIG_INVALID otherwise. */
export function parseModelRef(s: string, flag: string): ModelRef {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,127})(?:@([A-Za-z0-9][A-Za-z0-9_.-]{0,63}))?$/.exec(s.trim());
  if (!m) throw new AppError('FL_ERR_CONFIG_INVALID', { option: flag, value: s, rule: 'name or name@alias or name@version' });
  return { model: m[1], ref: m[2] ?? 'latest' };
}

/** The upstream token: FLOTILLA_REGISTRY_TOKEN, or the first line of a file (a mounted Kubernetes secret). */
export function registryToken(file: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (file) {
    try {
      return readFileSync(file, 'utf8').split('\n')[0].trim() || undefined;
    } catch (err) {
      throw new AppError('FL_ERR_CONFIG_INVALID', { option: '--registry-token-file', why: (err as Error).message });
    }
  }
  return env.FLOTILLA_REGISTRY_TOKEN || undefined;
}

export function positiveInt(v: string | undefined, fallback: number, flag: string, min = 0): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new AppError('FL_ERR_CONFIG_INVALID', { option: flag, value: v, rule: `an integer >= ${min}` });
  return n;
}

export const defaultEdgeId = (): string => process.env.HOSTNAME || `${hostname()}-${process.pid}`;

/**
 * Runs a serving replica or sidecar until SIGINT/SIGTERM: listens at once (liveness answers during
 * cold start), prints `flotilla listening <url>` and, once synced and warmed, `flotilla ready`
 * with the cold start of each preloaded model. An error no retry fixes (refused credential,
 * unknown model or alias, and nothing cached) ends the process with that code, exit status 1.
 */
export async function runEdge(opts: ServingAppOptions, listen: { port: number; host: string }): Promise<void> {
  await resolveBackend('node');
  const t0 = performance.now();
  const app = await buildServingApp(opts);
  const address = await app.listen(listen);
  process.stdout.write(`flotilla listening ${address}\n`);
  let closing = false;
  const shutdown = (code: number) => {
    if (closing) return;
    closing = true;
    app.close().then(
      () => process.exit(code),
      () => process.exit(1),
    );
  };
  app.edge.startup.then(
    () => process.stdout.write(`flotilla ready ${JSON.stringify({ ms: Math.round(performance.now() - t0), preload: app.edge.coldStarts() })}\n`),
    (err) => {
      const e = err instanceof AppError ? err : new AppError('FL_ERR_INTERNAL', { why: (err as Error).message });
      process.stderr.write(`flotilla: ${e.code}: ${e.message}${e.details ? ` ${JSON.stringify(e.details)}` : ''}\n`);
      shutdown(1);
    },
  );
  process.on('SIGINT', () => shutdown(0));
  process.on('SIGTERM', () => shutdown(0));
}
