import { afterEach, describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { gunzipSync } from 'node:zlib';
import { request } from 'node:http';
import type { FlotillaApp } from '@flotilla/server';
import { LiveFeed, frame } from '../../server/src/http/live-feed.js';
import { startServer } from '../helpers/server.js';

const ADMIN = 'live-admin-token-0123456789abcdef';
const DEVICE = 'live-device-token-0123456789abcdef';

interface Stream {
  status: number;
  headers: Record<string, unknown>;
  /** Frames received so far, parsed. */
  frames: Array<{ event: string; data: any }>;
  /** Resolves with the first frame (from now on, or already received) that `pred` accepts. */
  next(pred: (f: { event: string; data: any }) => boolean): Promise<{ event: string; data: any }>;
  ended: Promise<void>;
  close(): void;
}

/** Opens GET /api/v1/events as a browser would, over a raw HTTP request, and parses SSE frames. */
function openStream(url: string, token: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/v1/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      const frames: Stream['frames'] = [];
      const waiters: Array<{ pred: (f: Stream['frames'][number]) => boolean; resolve: (f: Stream['frames'][number]) => void }> = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!ev || data === undefined) continue;
          const f = { event: ev, data: JSON.parse(data) };
          frames.push(f);
          for (const w of [...waiters]) if (w.pred(f)) waiters.splice(waiters.indexOf(w), 1), w.resolve(f);
        }
      });
      const ended = new Promise<void>((r) => res.on('close', () => r()));
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        frames,
        next: (pred) => {
          const seen = frames.find(pred);
          return seen ? Promise.resolve(seen) : new Promise((r) => waiters.push({ pred, resolve: r }));
        },
        ended,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console live channel and the /ui files', () => {
  let app: FlotillaApp | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });
  const start = async () => {
    const s = await startServer({ adminToken: ADMIN, deviceToken: DEVICE, authRateLimit: false, processMetrics: false });
    app = s.app;
    return s.url;
  };

  it('guards /api/v1/events like every admin read: 401 without a token, 403 for a device, a JSON snapshot without Accept: text/event-stream', async () => {
    const url = await start();
    await app!.flotilla.coordinator.createTask({ id: 't1', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    const none = await fetch(`${url}/api/v1/events`, { headers: { accept: 'text/event-stream' } });
    expect(none.status).toBe(401);
    expect((await none.json()).error.code).toBe('FL_ERR_AUTH_REQUIRED');
    const device = await fetch(`${url}/api/v1/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${DEVICE}` } });
    expect(device.status).toBe(403);
    const snap = await fetch(`${url}/api/v1/events`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(snap.status).toBe(200);
    const body = await snap.json();
    expect(body.tasks).toEqual([{ id: 't1', state: 'created', currentVersion: 1, nextRound: 1, connectedDevices: 0, round: null }]);
  });

  it('streams a pulse at once, then task frames as state changes, to every subscriber; app.close ends the streams', async () => {
    const url = await start();
    await app!.flotilla.coordinator.createTask({ id: 't1', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    const viewer = (await (await fetch(`${url}/api/v1/tokens`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'viewer' }) })).json()).token;
    const a = await openStream(url, ADMIN);
    const b = await openStream(url, viewer);
    expect(a.status).toBe(200);
    expect(String(a.headers['content-type'])).toMatch(/^text\/event-stream/);
    expect((await a.next((f) => f.event === 'pulse')).data.tasks[0].id).toBe('t1');
    await b.next((f) => f.event === 'pulse');
    const started = await fetch(`${url}/api/v1/tasks/t1/start`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(started.status).toBe(200);
    for (const s of [a, b]) expect((await s.next((f) => f.event === 'task' && f.data.state === 'running')).data).toMatchObject({ id: 't1', state: 'running', connectedDevices: 0 });
    await app!.close();
    app = null;
    await Promise.all([a.ended, b.ended]);
  });

  it('refuses streams past maxSubscribers with 429 and frees the slot when one closes', async () => {
    const url = await start();
    const opened: Stream[] = [];
    for (let i = 0; i < 100; i++) opened.push(await openStream(url, ADMIN));
    expect(opened.every((s) => s.status === 200)).toBe(true);
    const over = await fetch(`${url}/api/v1/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${ADMIN}` } });
    expect(over.status).toBe(429);
    expect((await over.json()).error.code).toBe('FL_ERR_HTTP_RATE_LIMITED');
    opened[0].close();
    await opened[0].ended;
    await new Promise((r) => setTimeout(r, 50));
    const again = await openStream(url, ADMIN);
    expect(again.status).toBe(200);
    for (const s of [...opened, again]) s.close();
  });

  it('cuts off a subscriber that leaves more than maxBufferedBytes unread, and serialises each frame once for all', () => {
    const events = new EventEmitter();
    const coordinator = { events, listRunners: () => [], sessions: { forTask: () => [] } } as never;
    const feed = new LiveFeed(coordinator, { maxBufferedBytes: 100, pulseMs: 60_000 });
    const got: string[][] = [[], []];
    let closed = 0;
    let backlog = 0;
    feed.subscribe({ write: (c) => (got[0].push(c), 0), close: () => closed++ });
    feed.subscribe({ write: (c) => (got[1].push(c), (backlog += c.length)), close: () => closed++ });
    expect(feed.subscribers).toBe(2);
    events.emit('evaluation', { taskId: 't', round: 1, version: 2, metrics: { accuracy: 0.5, padding: 'x'.repeat(120) } });
    expect(closed).toBe(1);
    expect(feed.subscribers).toBe(1);
    expect(got[0][1]).toBe(frame('evaluation', { taskId: 't', round: 1, version: 2, metrics: { accuracy: 0.5, padding: 'x'.repeat(120) } }));
    expect(got[1][1]).toBe(got[0][1]);
    feed.close();
    expect(closed).toBe(2);
    expect(feed.subscribers).toBe(0);
  });

  it('serves the console with a strict CSP, gzip, ETags, and a coded 404 for unknown files', async () => {
    const url = await start();
    const page = await fetch(`${url}/ui/`, { headers: { 'accept-encoding': 'identity' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    expect(html).toContain('<script type="module" src="app.js"></script>');
    const etag = page.headers.get('etag')!;
    expect((await fetch(`${url}/ui/`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const gz = await new Promise<{ enc: string | undefined; body: Buffer }>((resolve, reject) =>
      request(`${url}/ui/vendor/htm-preact.mjs`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ enc: res.headers['content-encoding'], body: Buffer.concat(parts) }));
      })
        .on('error', reject)
        .end(),
    );
    expect(gz.enc).toBe('gzip');
    expect(gunzipSync(gz.body).toString()).toContain('export{');
    const redirect = await fetch(`${url}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/ui/');
    const missing = await fetch(`${url}/ui/%2e%2e/package.json`);
    expect(missing.status).toBe(404);
    const nothing = await fetch(`${url}/ui/no-such.js`);
    expect(nothing.status).toBe(404);
    expect((await nothing.json()).error.code).toBe('FL_ERR_HTTP_NOT_FOUND');
  });
});
