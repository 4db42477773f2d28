import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { PROTOCOL_VERSION } from '@flotilla/protocol';
import { parseServeConfig } from '../../server/src/config.js';
import { adminApp, ADMIN, DEVICE, type AdminHarness } from './admin-helpers.js';

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const OPENSSL = haveOpenssl();
if (!OPENSSL) console.warn('tls.test: skipped, no openssl binary to make a self-signed certificate');

function get(url: string, ca: Buffer, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** TLS with a self-signed certificate made by openssl for 127.0.0.1 and localhost. */
describe.skipIf(!OPENSSL)('TLS (--tls-cert / --tls-key)', () => {
  let dir: string;
  let cert: Buffer;
  let h: AdminHarness;
  let base: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    cert = readFileSync(join(dir, 'cert.pem'));
    // reportReceiver 'direct' asked for: with TLS the fastify route reads uploads all the same.
    h = await adminApp({ https: { cert, key: readFileSync(join(dir, 'key.pem')) }, reportReceiver: 'direct' });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `https://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await h?.app.close();
  });

  it('serves the API over HTTPS and refuses an untrusted client', async () => {
    expect(await get(`${base}/healthz`, cert)).toMatchObject({ status: 200 });
    const tasks = await get(`${base}/api/v1/tasks`, cert, ADMIN);
    expect(JSON.parse(tasks.body).tasks[0].id).toBe('t1');
    await expect(get(`${base}/healthz`, Buffer.from(''))).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('reads report uploads with the fastify route (the dedicated receiver is plain HTTP only): a chunked upload is read, not refused with 411', async () => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${base}/api/v1/devices/reports/not-a-token`, { method: 'PUT', ca: cert, headers: { 'content-type': 'application/octet-stream', 'x-flotilla-report': '{}' } }, (r) => {
        let body = '';
        r.on('data', (c) => (body += c)).on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(100));
      req.end();
    });
    expect([res.status, JSON.parse(res.body).error.code]).toEqual([401, 'FL_ERR_REPORT_TOKEN_INVALID']);
  });

  it('accepts devices over wss', async () => {
    const auth = { protocolVersion: PROTOCOL_VERSION, token: DEVICE, taskId: 't1' };
    const s = io(base, { transports: ['websocket'], reconnection: false, forceNew: true, ca: cert.toString(), auth } as never);
    try {
      const session = await new Promise<{ deviceId: string }>((resolve, reject) => {
        s.once('session', resolve);
        s.once('connect_error', reject);
      });
      expect(session.deviceId).toMatch(/^dev-/);
    } finally {
      s.disconnect();
    }
  });

  it('flotilla serve takes --tls-cert and --tls-key (both or neither)', async () => {
    expect(() => parseServeConfig(['--tls-cert', 'a.pem'], {})).toThrow();
    expect(parseServeConfig(['--tls-cert', 'a.pem', '--tls-key', 'b.pem', '--public-metrics'], {})).toMatchObject({ tlsCert: 'a.pem', tlsKey: 'b.pem', publicMetrics: true });
    const bin = new URL('../../scripts/dev/flotilla.mjs', import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data-dir', join(dir, 'data'), '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'), '--log-level', 'warn'], {
      env: { ...process.env, FLOTILLA_ADMIN_TOKEN: ADMIN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c) => {
          out += c;
          const m = /flotilla listening (\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
      });
      expect(address).toMatch(/^https:\/\//);
      const port = new URL(address).port;
      expect((await get(`https://127.0.0.1:${port}/api/v1/tasks`, cert, ADMIN)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
