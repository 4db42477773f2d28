import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildServer } from '../../test/helpers/child-server.js';

const LOADER = fileURLToPath(new URL('./device-loader.ts', import.meta.url));
const DEV_LOADER = new URL('../../scripts/dev-loader.mjs', import.meta.url).href;

/** One device-loader process (bench/scale/device-loader.ts) and what it reported. */
export interface Loader {
  proc: ChildProcess;
  connected: Promise<{ n: number; failed: number; ms: number }>;
  reports: Array<{ round: number; workMs: number; ok: boolean; code?: string }>;
}

/** `total` raw protocol devices of `taskId` spread over `k` loader processes; `extra` overrides the loader config. */
export function startLoaders(s: ChildServer, taskId: string, total: number, k: number, extra: Record<string, unknown>): Loader[] {
  return Array.from({ length: k }, (_, i) => {
    const count = Math.floor(total / k) + (i < total % k ? 1 : 0);
    const proc = fork(LOADER, [JSON.stringify({ url: s.url, token: s.deviceToken, taskId, count, concurrency: 50, respond: false, download: false, deltaFloats: 0, heartbeatMs: 5000, ...extra })], {
      execArgv: ['--import', DEV_LOADER, '--max-old-space-size=4096'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const reports: Loader['reports'] = [];
    const connected = new Promise<{ n: number; failed: number; ms: number }>((resolve, reject) => {
      proc.on('message', (m: any) => {
        if (m.type === 'connected') resolve(m);
        else if (m.type === 'report') reports.push(m);
        else if (m.type === 'error') reject(new Error(m.message));
      });
    });
    return { proc, connected, reports };
  });
}

export async function closeLoaders(ls: Loader[]): Promise<void> {
  await Promise.all(ls.map((l) => new Promise((r) => { l.proc.once('exit', r); l.proc.send({ type: 'close' }); })));
}
