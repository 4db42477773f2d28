/**
 * A child process holding many raw protocol devices (socket.io-client, handshake, heartbeats) for the
 * scale benchmark. Configured by one JSON argument; reports to the parent over IPC. Devices that
 * respond do the "trivial local work" of the benchmark: optionally download the global weights,
 * then send a precomputed f32 delta: over the upload channel (`PUT` of the `fit:upload` URL, as the
 * SDK does) when `upload` is set and the coordinator offered it, else `fit:ready` + `fit:report`.
 */
import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, REPORT_META_HEADER } from '@flotilla/protocol';
import { f32Codec } from '@flotilla/protocol';

interface LoaderConfig {
  url: string;
  token: string;
  taskId: string;
  count: number;
  concurrency: number;
  respond: boolean;
  download: boolean;
  deltaFloats: number;
  heartbeatMs: number;
  upload?: boolean;
}

const cfg = JSON.parse(process.argv[2]) as LoaderConfig;
const send = (m: unknown) => process.send!(m);
const sockets: Socket[] = [];
const delta = cfg.respond ? f32Codec.encode(new Float32Array(cfg.deltaFloats).map((_, i) => ((i % 13) - 6) * 1e-4)) : new Uint8Array(0);
let downloaded = 0;
const meta = JSON.stringify({ numExamples: 10, metrics: { loss: 1 }, codec: 'f32' });

async function connectOne(): Promise<void> {
  const auth = { protocolVersion: PROTOCOL_VERSION, token: cfg.token, taskId: cfg.taskId };
  const s = io(cfg.url, { transports: ['websocket'], reconnection: false, forceNew: true, auth });
  sockets.push(s);
  // Accepted once the server's `session` arrives; a refused handshake carries its coded error in connect_error.
  await new Promise<void>((resolve, reject) => {
    s.once('session', () => resolve());
    s.once('connect_error', (err: Error & { data?: unknown }) => reject(new Error(JSON.stringify(err.data ?? err.message))));
  });
  // The fit:upload offer follows its instruction on the same socket: a promise per round, settled by whichever comes first.
  const offers = new Map<number, { url?: string; got?: (u: string) => void }>();
  s.on('fit:upload', (m: { round: number; url: string }) => {
    const o = offers.get(m.round);
    if (o?.got) o.got(m.url);
    else offers.set(m.round, { url: m.url });
  });
  const offer = (round: number) => {
    const o = offers.get(round);
    offers.delete(round);
    return o?.url ?? new Promise<string>((got) => offers.set(round, { got }));
  };
  if (cfg.respond) {
    s.on('fit:instruction', async (ins: { round: number; weightsUrl: string }) => {
      const t0 = performance.now();
      if (cfg.download) {
        const res = await fetch(new URL(ins.weightsUrl, cfg.url), { headers: { authorization: `Bearer ${cfg.token}` } });
        downloaded += (await res.arrayBuffer()).byteLength;
      }
      const work = performance.now() - t0;
      if (cfg.upload) {
        const url = await offer(ins.round);
        const res = await fetch(new URL(url, cfg.url), { method: 'PUT', headers: { 'content-type': 'application/octet-stream', [REPORT_META_HEADER]: meta }, body: delta as Uint8Array<ArrayBuffer> }).catch((e: Error) => e);
        const a = res instanceof Error ? { ok: false, error: { code: res.message } } : ((await res.json()) as { ok: boolean; error?: { code: string } });
        send({ type: 'report', round: ins.round, workMs: work, ok: a.ok, code: a.ok ? undefined : a.error?.code });
        return;
      }
      const slot = await s.timeout(600_000).emitWithAck('fit:ready', { taskId: cfg.taskId, round: ins.round, bytes: delta.byteLength }).catch((e: Error) => ({ ok: false, error: { code: e.message } }));
      if (!slot.ok) {
        send({ type: 'report', round: ins.round, workMs: work, ok: false, code: slot.error.code });
        return;
      }
      const a = await s.timeout(120_000).emitWithAck('fit:report', { taskId: cfg.taskId, round: ins.round, numExamples: 10, metrics: { loss: 1 }, codec: 'f32', delta }).catch((e: Error) => ({ ok: false, error: { code: e.message } }));
      send({ type: 'report', round: ins.round, workMs: work, ok: a.ok, code: a.ok ? undefined : a.error.code });
    });
  }
}

async function main() {
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: cfg.concurrency }, async () => {
      while (next < cfg.count) {
        next++;
        await connectOne().catch(() => failed++);
      }
    }),
  );
  send({ type: 'connected', n: cfg.count - failed, failed, ms: performance.now() - t0 });
  setInterval(() => {
    for (const s of sockets) if (s.connected) s.emit('heartbeat', { t: Date.now() });
  }, cfg.heartbeatMs).unref();
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') send({ type: 'stats', connected: sockets.filter((s) => s.connected).length, downloaded });
    if (m.type === 'close') {
      sockets.forEach((s) => s.disconnect());
      setTimeout(() => process.exit(0), 200);
    }
  });
}

main().catch((err) => {
  send({ type: 'error', message: String(err) });
  process.exit(1);
});
