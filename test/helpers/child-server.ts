import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A real `flotilla serve` in a child process on an ephemeral loopback port, so benchmarks and
 * chaos tests measure (and kill) the coordinator alone. Reads the process's own RSS, peak RSS
 * and CPU time from /proc.
 */
export interface ChildServer {
  proc: ChildProcess;
  url: string;
  adminToken: string;
  deviceToken: string;
  dataDir: string;
  rssBytes(): number;
  peakRssBytes(): number;
  cpuSeconds(): number;
  /** The last lines the process wrote (stdout: its pino log; stderr), for a failing test to show. */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const OUTPUT_LINES = 400;
const BIN = fileURLToPath(new URL('../../scripts/dev/flotilla.mjs', import.meta.url));

/**
 * `detached`: the server leads its own process group and `stop` signals the whole group (the
 * negative pid), so a SIGKILL reaches every process of it however it was started. `logLevel`
 * (default warn): what the server logs; its output is kept (the last `OUTPUT_LINES` lines, less fastify's
 * per-request lines) for `output()`.
 */
export async function startChildServer(opts: { dataDir?: string; env?: Record<string, string>; args?: string[]; port?: number; nodeArgs?: string[]; detached?: boolean; startTimeoutMs?: number; logLevel?: string } = {}): Promise<ChildServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
  const adminToken = 'admin-token-for-benchmarks-0001';
  const deviceToken = 'device-token-for-benchmarks-001';
  const proc = spawn(process.execPath, ['--max-old-space-size=8192', ...(opts.nodeArgs ?? []), BIN, 'serve', '--port', String(opts.port ?? 0), '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', opts.logLevel ?? 'warn', ...(opts.args ?? [])], {
    env: { ...process.env, FLOTILLA_ADMIN_TOKEN: adminToken, FLOTILLA_DEVICE_TOKEN: deviceToken, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  const lines: string[] = [];
  // fastify's per-request lines are left out: a test polling a node would push everything else out.
  const perRequest = /"msg":"(incoming request|request completed)"/;
  const keep = (d: Buffer) => {
    lines.push(...d.toString().split('\n').filter((l) => l.length > 0 && !perRequest.test(l)));
    if (lines.length > OUTPUT_LINES) lines.splice(0, lines.length - OUTPUT_LINES);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', (d: Buffer) => {
    keep(d);
    process.stderr.write(d);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const limit = opts.startTimeoutMs ?? 60_000;
    const timer = setTimeout(() => reject(new Error(`server did not start in ${limit / 1000} s:\n${lines.join('\n')}`)), limit);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = /flotilla listening (\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${lines.join('\n')}`)));
  });
  const status = (key: string) => {
    const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  };
  return {
    proc,
    url,
    adminToken,
    deviceToken,
    dataDir,
    output: () => lines.join('\n'),
    rssBytes: () => status('VmRSS'),
    peakRssBytes: () => status('VmHWM'),
    cpuSeconds: () => {
      const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
    },
    /** Stop the process; the data dir is removed only when this helper created it. */
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        if (opts.detached) process.kill(-proc.pid!, signal);
        else proc.kill(signal);
        await exited;
      }
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Admin REST call against a child server. */
export async function admin(s: ChildServer, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(s.url + path, {
    method,
    headers: { authorization: `Bearer ${s.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
