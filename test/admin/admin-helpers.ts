import type { InjectOptions } from 'fastify';
import { buildApp, MemoryBlobStore, MemoryStore, type AppOptions, type FlotillaApp } from '@flotilla/server';

export const ADMIN = 'admin-token-for-tests-0123456789';
export const DEVICE = 'device-token-for-tests-0123456789';

export interface AdminHarness {
  app: FlotillaApp;
  viewer: string;
  device: string;
  inference: string;
  /** app.inject with the admin token unless `token` (null: no Authorization header). */
  call(opts: InjectOptions & { token?: string | null }): Promise<{ status: number; json: any; body: string; headers: Record<string, unknown> }>;
}

/** An in-memory app with a viewer token, a device token for task `t1` (created from tiny-mlp) and an unscoped inference token. */
export async function adminApp(opts: AppOptions = {}): Promise<AdminHarness> {
  const app = await buildApp({ store: new MemoryStore(), blobs: new MemoryBlobStore(), adminToken: ADMIN, deviceToken: DEVICE, processMetrics: false, authRateLimit: false, ...opts });
  await app.flotilla.coordinator.createTask({ id: 't1', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, roundDeadlineMs: 60_000 } });
  const viewer = (await app.flotilla.authenticator.createToken({ role: 'viewer', createdBy: 'test' })).token;
  const device = (await app.flotilla.authenticator.createToken({ role: 'device', taskId: 't1', createdBy: 'test' })).token;
  const inference = (await app.flotilla.authenticator.createToken({ role: 'inference', createdBy: 'test' })).token;
  const call: AdminHarness['call'] = async ({ token, ...o }) => {
    const t = token === undefined ? ADMIN : token;
    const headers = { ...(o.headers ?? {}), ...(t !== null ? { authorization: `Bearer ${t}` } : {}) };
    const res = await app.inject({ ...o, headers } as InjectOptions);
    let json: unknown;
    try {
      json = res.json();
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, body: res.body, headers: res.headers as Record<string, unknown> };
  };
  return { app, viewer, device, inference, call };
}

/** A concrete URL for a route pattern (`:param` and `*` filled in). */
export function fillUrl(url: string, value = 'x'): string {
  return url.replace(/:[A-Za-z0-9_]+/g, value).replace(/\*$/, value);
}
