import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = process.env.FLOTILLA_TEST_REDIS_SERVER ?? '/usr/bin/redis-server';
/** Why Redis tests skip here, or null when they can run. */
export const redisSkipReason: string | null = existsSync(REDIS_SERVER) ? null : `${REDIS_SERVER} not found (apt-get install redis-server; .ci/run installs it)`;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A real redis-server on a free loopback port, without persistence (a restart loses everything,
 * the harshest case for the cluster). `restart()` stops it and starts a fresh one on the same port.
 */
export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(downMs?: number): Promise<void>;
  /** Kill it (SIGKILL) and leave it down until `up()`: data is lost, as in a restart. */
  down(): Promise<void>;
  up(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-redis-'));
  let proc: ChildProcess | null = null;
  const up = async () => {
    proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('redis-server did not start in 20 s')), 20_000);
      proc!.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (/Ready to accept connections/.test(buf)) {
          clearTimeout(t);
          resolve();
        }
      });
      proc!.once('exit', (c) => reject(new Error(`redis-server exited with ${c}`)));
    });
    proc.stdout!.resume();
  };
  const down = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  await up();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await down();
      rmSync(dir, { recursive: true, force: true });
    },
    down,
    up,
    restart: async (downMs = 500) => {
      await down();
      await new Promise((r) => setTimeout(r, downMs));
      await up();
    },
  };
}
