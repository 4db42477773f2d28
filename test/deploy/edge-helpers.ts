import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../scripts/dev/flotilla.mjs', import.meta.url));

/** A `flotilla` child process in its own process group (killed as a group), with its output kept. */
export interface Proc {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  url: string | null;
  /** Resolves with the first match in stdout (or rejects when the process exits first). */
  waitFor(re: RegExp): Promise<RegExpExecArray>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnFlotilla(args: string[], env: Record<string, string> = {}): Proc {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void; reject: (e: Error) => void }> = [];
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const p: Proc = {
    proc,
    out: () => out,
    err: () => err,
    url: null,
    waitFor: (re) =>
      new Promise((resolve, reject) => {
        const m = re.exec(out);
        if (m) return resolve(m);
        waiters.push({ re, resolve, reject });
      }),
    exited,
    kill: async (signal = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null) {
        try {
          process.kill(-proc.pid!, signal);
        } catch {
          /* gone already */
        }
        await exited;
      }
    },
  };
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) {
      const m = w.re.exec(out);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  void exited.then((code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`flotilla exited (${code}) before ${w.re}: ${err.slice(-2000)}`));
  });
  return p;
}

export async function started(p: Proc): Promise<Proc> {
  p.url = (await p.waitFor(/flotilla listening (\S+)/))[1];
  return p;
}

export type ProxyMode = 'up' | 'down' | 'corrupt' | 'hold';

/**
 * A loopback HTTP proxy in front of a coordinator that a test switches: `down` destroys every
 * connection (an outage), `corrupt` flips a byte in artifact bodies (a registry returning a
 * checksum mismatch), `hold` keeps artifact requests waiting until the mode changes.
 */
export async function flakyProxy(target: string): Promise<{ url: string; mode: ProxyMode; requests: string[]; close(): Promise<void> }> {
  const t = new URL(target);
  const held: Array<() => void> = [];
  const state = {
    url: '',
    requests: [] as string[],
    _mode: 'up' as ProxyMode,
    get mode() {
      return this._mode;
    },
    set mode(m: ProxyMode) {
      this._mode = m;
      if (m !== 'hold') for (const f of held.splice(0)) f();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server = http.createServer((req, res) => {
    state.requests.push(`${req.method} ${req.url}`);
    if (state.mode === 'down') return req.socket.destroy();
    const artifact = /\/artifacts\//.test(req.url ?? '');
    const forward = () => {
      if (state.mode === 'down') return req.socket.destroy();
      const up = http.request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        if (artifact && state.mode === 'corrupt' && (r.statusCode ?? 0) === 200) {
          const parts: Buffer[] = [];
          r.on('data', (c: Buffer) => parts.push(c));
          r.on('end', () => {
            const body = Buffer.concat(parts);
            if (body.length > 0) body[body.length >> 1] ^= 0xff;
            res.writeHead(200, r.headers);
            res.end(body);
          });
          return;
        }
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (artifact && state.mode === 'hold') held.push(forward);
    else forward();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

export function getJson(url: string, token?: string): Promise<{ status: number; json: any; headers: Headers }> {
  return call(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

export function sendJson(method: string, url: string, body: unknown, token?: string): Promise<{ status: number; json: any; headers: Headers }> {
  return call(url, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
}

/** The status, the body as JSON (or as text when it is not JSON) and the headers. */
async function call(url: string, init: RequestInit): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** Calls `f` until it returns a truthy value (events arrive when they arrive: no wall-clock assertion). */
export async function until<T>(f: () => Promise<T>, what: string, tries = 600, everyMs = 100): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const v = await f();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`gave up waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

/** One OIP inference of 8-feature rows; returns the version that answered and the outputs. */
export async function infer(base: string, model: string, rows: number[][], opts: { token?: string; ref?: string } = {}): Promise<{ status: number; version: string; data: number[]; json: any }> {
  const path = opts.ref ? `/v2/models/${model}/versions/${opts.ref}/infer` : `/v2/models/${model}/infer`;
  const r = await sendJson('POST', `${base}${path}`, { inputs: [{ name: 'hidden_input', shape: [rows.length, 8], datatype: 'FP32', data: rows.flat() }] }, opts.token);
  return { status: r.status, version: r.json?.model_version, data: r.json?.outputs?.[0]?.data, json: r.json };
}
