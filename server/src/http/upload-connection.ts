import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { AppError, ERROR_REGISTRY } from '../errors.js';
import type { BodySource } from '../coordinator/report-upload.js';
import { parseUploadHead, sniffUpload, type HeadLimits, type UploadHead } from './upload-head.js';

export interface UploadConnectionOptions extends HeadLimits {
  /** From waiting for a request (connection start, or the previous answer) to its complete head; then the connection closes (408 when part of a head came). */
  headerTimeoutMs: number;
  /** Longest pause while a body is read (or drained); then 408 and the connection closes. */
  bodyIdleTimeoutMs: number;
  /** Handles one upload: resolves when folded, rejects with AppError (anything else answers 500). Reads the body through `body` at most once. */
  handle: (head: UploadHead, body: BodySource) => Promise<void>;
  /** Counts a refusal made here, before `handle` (head errors, timeouts, pipelining). */
  refused: (err: AppError) => void;
  /** Takes the socket, the bytes read so far unshifted back into it, for good (a request that is not an upload). */
  handOff: (socket: Socket) => void;
  /** The connection is no longer this reader's (closed or handed off). */
  released: (conn: UploadConnection) => void;
  log: FastifyBaseLogger;
}

type State = 'head' | 'body' | 'drain' | 'gone';
type Consumer = { each: (chunk: Uint8Array) => void; resolve: () => void; reject: (err: unknown) => void };

let dateSecond = 0;
let dateValue = '';
function httpDate(): string {
  const s = Math.floor(Date.now() / 1000);
  if (s !== dateSecond) (dateSecond = s), (dateValue = new Date(s * 1000).toUTCString());
  return dateValue;
}

/**
 * One TCP connection as the dedicated report receiver reads it (docs/cluster.md, "The report upload
 * channel"): one request at a time. Each request's first bytes decide its owner: a report upload
 * (upload-head.ts) is read here, its body handed to `handle` through a BodySource with the socket
 * paused until `handle` asks for it (TCP holds the device back while it waits for a slot); anything
 * else goes, with those bytes, to the HTTP server for good (`handOff`). Answers as the fastify route
 * does (report-upload-routes.ts): the status, `{"ok":true}` or `{ ok: false, error }` as
 * application/json, `connection: close` after a refused oversize body. Bytes arriving after the
 * body and before the answer are a pipelined request: the answer is followed by 400
 * FL_ERR_HTTP_PIPELINED and the connection closes. A body left unread by a refusal is drained (the
 * connection stays usable) unless it was refused as too large or too slow.
 */
export class UploadConnection {
  private state: State = 'head';
  /** Head bytes so far (state 'head'); body bytes `handle` has not asked for yet (state 'body'). */
  private pending: Buffer | null = null;
  /** Body bytes of the current request not yet received. */
  private remaining = 0;
  private asked = false;
  private consumer: Consumer | null = null;
  private pipelined = false;
  private ended = false;
  private timer: NodeJS.Timeout | null = null;
  private started = 0;

  constructor(
    readonly socket: Socket,
    private readonly o: UploadConnectionOptions,
  ) {
    socket.on('data', this.onData).on('end', this.onEnd).on('close', this.onClose).on('error', this.onError);
    this.arm(o.headerTimeoutMs, this.headTimeout);
  }

  /** Closes the connection whatever it is doing (server shutdown). */
  destroy(): void {
    this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer) => {
    if (this.state === 'head') this.headBytes(chunk);
    else if (this.state === 'body') this.bodyBytes(chunk);
    else if (this.state === 'drain') this.drainBytes(chunk);
  };

  private headBytes(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = buf;
    const kind = sniffUpload(buf);
    if (kind === 'more') return;
    if (kind === 'other') return this.handOff();
    let head: UploadHead | null;
    try {
      head = parseUploadHead(buf, this.o);
    } catch (err) {
      return this.refuse(err as AppError);
    }
    if (!head) return;
    this.disarm();
    this.state = 'body';
    this.started = performance.now();
    this.asked = false;
    this.pipelined = false;
    this.remaining = head.contentLength;
    let body = buf.subarray(head.headBytes);
    if (body.length > this.remaining) (this.pipelined = true), (body = body.subarray(0, this.remaining));
    this.remaining -= body.length;
    this.pending = body.length > 0 ? body : null;
    this.socket.pause();
    this.o.handle(head, this.body).then(
      () => this.answer(null),
      (err: unknown) => this.answer(err),
    );
  }

  private readonly body: BodySource = (each) =>
    new Promise<void>((resolve, reject) => {
      if (this.asked) return reject(new Error('the body was read already'));
      this.asked = true;
      if (this.state === 'gone' || (this.ended && this.remaining > 0)) return reject(new Error('connection closed before the body was read'));
      this.consumer = { each, resolve, reject };
      const first = this.pending;
      this.pending = null;
      if (first && !this.deliver(first)) return;
      if (this.remaining === 0) return this.finishBody();
      this.arm(this.o.bodyIdleTimeoutMs, this.bodyTimeout);
      this.socket.resume();
    });

  private bodyBytes(chunk: Buffer): void {
    if (this.remaining === 0) {
      // The body is complete and its answer not yet written: the client sent the next request early.
      this.pipelined = true;
      this.socket.pause();
      return;
    }
    let part = chunk;
    if (part.length > this.remaining) (this.pipelined = true), (part = part.subarray(0, this.remaining));
    this.remaining -= part.length;
    if (!this.asked) this.pending = this.pending ? Buffer.concat([this.pending, part]) : part;
    else if (this.consumer && this.deliver(part)) {
      this.timer?.refresh();
      if (this.remaining === 0) this.finishBody();
    }
  }

  /** Passes a chunk on; false when the consumer threw (it is then rejected and gets nothing more). */
  private deliver(chunk: Uint8Array): boolean {
    try {
      this.consumer!.each(chunk);
      return true;
    } catch (err) {
      this.failBody(err);
      return false;
    }
  }

  private finishBody(): void {
    const c = this.consumer!;
    this.consumer = null;
    this.disarm();
    c.resolve();
  }

  private failBody(err: unknown): void {
    const c = this.consumer;
    this.consumer = null;
    this.disarm();
    c?.reject(err);
  }

  private drainBytes(chunk: Buffer): void {
    const n = Math.min(this.remaining, chunk.length);
    this.remaining -= n;
    this.timer?.refresh();
    if (this.remaining > 0) return;
    this.nextRequest();
    if (n < chunk.length) this.headBytes(chunk.subarray(n));
  }

  private nextRequest(): void {
    this.state = 'head';
    this.pending = null;
    this.arm(this.o.headerTimeoutMs, this.headTimeout);
    this.socket.resume();
  }

  private answer(err: unknown): void {
    this.disarm();
    this.consumer = null;
    if (this.state === 'gone') return;
    let status = 200;
    let json = '{"ok":true}';
    let code: string | undefined;
    if (err instanceof AppError) {
      status = err.status;
      code = err.code;
      json = JSON.stringify({ ok: false, error: err.toWire() });
    } else if (err !== null) {
      this.o.log.error({ err }, 'unhandled error in a report upload');
      status = 500;
      code = 'FL_ERR_INTERNAL';
      json = JSON.stringify({ error: { code, message: ERROR_REGISTRY.FL_ERR_INTERNAL.message } });
    }
    const close = this.pipelined || this.ended || code === 'FL_ERR_REPORT_TOO_LARGE' || code === 'FL_ERR_HTTP_TIMEOUT';
    this.o.log.info({ res: { statusCode: status }, code, responseTime: performance.now() - this.started }, 'report upload answered');
    this.write(status, json, close);
    if (this.pipelined) {
      const p = new AppError('FL_ERR_HTTP_PIPELINED');
      this.o.refused(p);
      this.write(p.status, JSON.stringify({ ok: false, error: p.toWire() }), true);
    }
    if (close) return this.close();
    if (this.remaining > 0) {
      // Refused before its body was read: drain the rest so that the connection can carry another request.
      this.state = 'drain';
      this.pending = null;
      this.arm(this.o.bodyIdleTimeoutMs, () => this.socket.destroy());
      this.socket.resume();
    } else this.nextRequest();
  }

  /** A refusal before `handle`: answered, counted, and the connection closed (its framing is not trusted). */
  private refuse(err: AppError): void {
    this.disarm();
    this.o.refused(err);
    this.o.log.info({ res: { statusCode: err.status }, code: err.code }, 'report upload refused');
    this.write(err.status, JSON.stringify({ ok: false, error: err.toWire() }), true);
    this.close();
  }

  private write(status: number, json: string, close: boolean): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const keep = close ? 'connection: close' : `connection: keep-alive\r\nkeep-alive: timeout=${Math.max(1, Math.floor(this.o.headerTimeoutMs / 1000))}`;
    this.socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(json)}\r\ndate: ${httpDate()}\r\n${keep}\r\n\r\n${json}`);
  }

  private close(): void {
    this.state = 'gone';
    this.pending = null;
    this.socket.end();
    // A client that never reads its answer or never closes does not hold the socket for ever.
    this.arm(this.o.bodyIdleTimeoutMs, () => this.socket.destroy());
  }

  private readonly headTimeout = () => {
    if (this.pending && this.pending.length > 0) return this.refuse(new AppError('FL_ERR_HTTP_TIMEOUT', { waitedMs: this.o.headerTimeoutMs }));
    this.socket.destroy(); // an idle kept-alive connection: closed without an answer, as Node's keep-alive timeout does
  };

  private readonly bodyTimeout = () => this.failBody(new AppError('FL_ERR_HTTP_TIMEOUT', { idleMs: this.o.bodyIdleTimeoutMs }));

  private handOff(): void {
    this.disarm();
    const s = this.socket;
    s.off('data', this.onData).off('end', this.onEnd).off('close', this.onClose).off('error', this.onError);
    s.pause();
    if (this.pending) s.unshift(this.pending);
    this.pending = null;
    this.state = 'gone';
    this.o.released(this);
    this.o.handOff(s);
    // Paused explicitly above, so the new 'data' listener did not restart the flow: the unshifted bytes go first.
    s.resume();
  }

  private readonly onEnd = () => {
    this.ended = true;
    if (this.state === 'head' || this.state === 'drain') return this.close();
    if (this.remaining > 0) this.failBody(new Error('connection closed before the body ended'));
  };

  private readonly onClose = () => {
    this.state = 'gone';
    this.disarm();
    this.failBody(new Error('connection closed before the body ended'));
    this.o.released(this);
  };

  private readonly onError = () => undefined; // 'close' follows

  private arm(ms: number, fn: () => void): void {
    this.disarm();
    this.timer = setTimeout(fn, ms);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer), (this.timer = null);
  }
}
