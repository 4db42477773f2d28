/**
 * Transport floors for `bench/scale.ts ingest` (issue 14 part 9): the CPU a bare receiving
 * process spends on the same reports when it does nothing but receive them and answer each with
 * a small ack, so the coordinator's CPU per GiB can be read against what the transport alone
 * costs on the same machine in the same run.
 *
 *  - `ws`: a bare `ws` server (same library and `bufferutil` as engine.io uses); each report is one
 *    masked binary websocket message, answered with a short text message.
 *  - `socket.io`: a bare socket.io server with the coordinator's transport options; each report is
 *    a `fit:report` event with the delta as a binary attachment (two websocket messages), answered
 *    by its ack, as Flotilla devices send them (no handshake checks, no validation, no fold).
 *  - `http`: a bare Node http server; each report is one `PUT` with the delta as the body (sent with
 *    fetch, as the SDK's upload channel does), read chunk by chunk into one reused buffer and
 *    answered with a short JSON ack: the floor of the coordinator's upload channel.
 *  - `net`: the same `PUT`s (same client) received by a bare `net.createServer` that parses HTTP/1.1
 *    by hand, as little as a receiver can: the header block up to CRLFCRLF, its Content-Length, then
 *    the body copied into one reused buffer, answered `200` with the same ack. No header validation,
 *    no limits, no chunked bodies: not a server, only the cost of a receive path cheaper than Node's
 *    http parser and streams on this machine.
 *
 * Run as a child: `transport-floor.ts serve ws|socket.io` prints the port and serves until killed.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { Server } from 'socket.io';
import { io as ioClient } from 'socket.io-client';

export type Floor = 'ws' | 'socket.io' | 'http' | 'net';
const DEV_LOADER = new URL('../../scripts/dev-loader.mjs', import.meta.url).href;

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** The `net` floor: keep-alive HTTP/1.1 PUTs with Content-Length, parsed by hand (see the file comment). */
function serveNet(): void {
  let buf = new Uint8Array(0);
  const srv = createNetServer((sock: Socket) => {
    let head: Buffer | null = null; // header bytes so far (reading headers when need < 0)
    let need = -1;
    let n = 0;
    const handle = (c: Buffer): void => {
      for (let off = 0; off < c.length; ) {
        if (need < 0) {
          const h: Buffer = head ? Buffer.concat([head, c.subarray(off)]) : c.subarray(off);
          const end = h.indexOf(CRLFCRLF);
          if (end < 0) {
            head = Buffer.from(h);
            return;
          }
          head = null;
          const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(h.toString('latin1', 0, end));
          need = m ? Number(m[1]) : 0;
          n = 0;
          if (need > buf.length) buf = new Uint8Array(need);
          c = h;
          off = end + 4;
        } else {
          const take = Math.min(need, c.length - off);
          buf.set(take === c.length ? c : c.subarray(off, off + take), n);
          n += take;
          need -= take;
          off += take;
        }
        if (need === 0) {
          const body = `{"ok":true,"n":${n}}`;
          sock.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
          need = -1;
        }
      }
    };
    sock.on('data', handle);
    sock.on('error', (err) => {
      process.stderr.write(`net floor: ${String(err)} (${need} body bytes still expected)\n`);
      sock.destroy();
    });
  });
  srv.listen(0, '127.0.0.1', () => process.send!({ port: (srv.address() as { port: number }).port }));
}

function serve(kind: Floor): void {
  if (kind === 'net') return serveNet();
  const http = createServer();
  if (kind === 'http') {
    let buf = new Uint8Array(0);
    http.on('request', (req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => {
        if (n + c.length > buf.length) buf = new Uint8Array(Math.max(2 * buf.length, n + c.length));
        buf.set(c, n);
        n += c.length;
      });
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"ok":true,"n":${n}}`));
    });
  } else if (kind === 'ws') {
    const wss = new WebSocketServer({ server: http, maxPayload: 64 * 2 ** 20, perMessageDeflate: false });
    wss.on('connection', (ws) => ws.on('message', (data: Buffer) => ws.send(`{"ok":true,"n":${data.length}}`)));
  } else {
    const io = new Server(http, { maxHttpBufferSize: 64 * 2 ** 20, transports: ['websocket'], perMessageDeflate: false, serveClient: false });
    io.on('connection', (s) => s.on('fit:report', (m: { delta: Uint8Array }, ack: (a: unknown) => void) => ack({ ok: true, n: m.delta.byteLength })));
  }
  http.listen(0, '127.0.0.1', () => process.send!({ port: (http.address() as { port: number }).port }));
}

const cpuSeconds = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

/**
 * Sends `reports` messages of `bytes` over `connections` connections, at most `inflight` at a time
 * (the coordinator's upload slots), each waiting for its ack; returns the server's CPU seconds.
 */
export async function transportFloor(kind: Floor, connections: number, reports: number, bytes: number, inflight: number): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), ['serve', kind], { execArgv: ['--import', DEV_LOADER, '--max-old-space-size=8192'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`transport floor server exited ${code}`)));
    });
    const payload = new Uint8Array(bytes).map((_, i) => i);
    type Send = () => Promise<void>;
    const senders: Send[] = [];
    const chains: Array<Promise<unknown>> = [];
    /** One message at a time per connection (as a device sends one report per round). */
    const serial = (i: number, send: Send): Send => () => (chains[i] = (chains[i] ?? Promise.resolve()).then(send)) as Promise<void>;
    const closers: Array<() => void> = [];
    let retried = 0;
    for (let i = 0; i < connections; i++) {
      if (kind === 'http' || kind === 'net') {
        const url = `http://127.0.0.1:${port}/report/${i}`;
        // A request that fails is sent again, at most twice, and counted (printed): seen once in
        // a while as EPIPE on a kept-alive connection with the `net` floor on a loaded machine.
        const put = async () => void (await (await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: payload })).json());
        senders.push(serial(i, async () => {
          for (let tries = 0; ; tries++) {
            try {
              return await put();
            } catch (err) {
              if (tries === 2) throw err;
              retried++;
            }
          }
        }));
      } else if (kind === 'ws') {
        const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
        await new Promise((r, j) => ws.once('open', r).once('error', j));
        senders.push(serial(i, () => new Promise<void>((r) => { ws.once('message', () => r()); ws.send(payload); })));
        closers.push(() => ws.close());
      } else {
        const s = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true });
        await new Promise((r, j) => s.once('connect', () => r(undefined)).once('connect_error', j));
        senders.push(serial(i, () => s.timeout(120_000).emitWithAck('fit:report', { taskId: 'floor', round: 1, numExamples: 10, metrics: { loss: 1 }, codec: 'f32', delta: payload })));
        closers.push(() => s.disconnect());
      }
    }
    const c0 = cpuSeconds(child.pid!);
    let next = 0;
    await Promise.all(Array.from({ length: inflight }, async () => {
      while (next < reports) await senders[next++ % connections]();
    }));
    const cpu = cpuSeconds(child.pid!) - c0;
    closers.forEach((c) => c());
    if (retried > 0) console.log(`(${kind} floor: ${retried} failed requests sent again)`);
    return cpu;
  } finally {
    child.kill();
  }
}

if (process.argv[2] === 'serve') serve(process.argv[3] as Floor);
