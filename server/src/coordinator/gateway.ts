import { randomUUID } from 'node:crypto';
import type { Server } from 'socket.io';
import {
  CLIENT_EVENTS,
  EvalReportSchema,
  FitFailureSchema,
  FitReadySchema,
  FitReportSchema,
  HeartbeatSchema,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SessionLimits,
} from '@flotilla/protocol';
import { AppError, type ErrorCode } from '../errors.js';
import type { Coordinator } from './coordinator.js';
import { handshakeMiddleware, type HandshakeOptions } from './handshake.js';
import { decoderOf, isTooLarge } from './message-limits.js';
import type { DeviceSession, DeviceSocket, SocketData } from './sessions.js';
import { validated } from './validated-handler.js';
import { TokenBucket } from './rate-limiter.js';

export interface GatewayOptions {
  heartbeatIntervalMs: number;
  sessionTimeoutMs: number;
  /** Per-connection message budget: burst size and sustained messages per second (every event counts, known or not). */
  rateLimit: { burst: number; perSecond: number };
  /** Per-event limits after the handshake (see message-limits.ts); the transport cap is stated to devices. */
  limits: SessionLimits;
  /** The handshake check (handshake.ts) minus the counter, which the gateway supplies. */
  handshake: Omit<HandshakeOptions, 'count'>;
}

type Io = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/**
 * The socket.io boundary. The handshake middleware admits a socket only with valid credentials;
 * every event then passes the connection's token bucket (unknown events included), the size
 * limits (message-limits.ts) and `validated`. Sessions idle (no message, no heartbeat) for
 * sessionTimeoutMs are disconnected. Returns a function that stops the idle sweeper.
 */
export function attachGateway(io: Io, coordinator: Coordinator, opts: GatewayOptions): () => void {
  const count = (code: ErrorCode) => {
    coordinator.stats.rejected[code] = (coordinator.stats.rejected[code] ?? 0) + 1;
  };
  io.use(handshakeMiddleware(coordinator, { ...opts.handshake, count }));

  io.on('connection', (socket: DeviceSocket) => {
    const a = socket.data.admitted!;
    const runner = coordinator.maybeRunner(a.taskId);
    if (!runner) return void socket.disconnect(true);
    const now = Date.now();
    const s: DeviceSession = { deviceId: a.deviceId, sessionId: randomUUID(), taskId: a.taskId, socket, connectedAt: now, lastSeen: now, backend: a.backend, tokenId: a.tokenId };
    socket.data.session = s;
    const replaced = coordinator.sessions.add(s);
    if (replaced) {
      replaced.socket.data.session = undefined;
      replaced.socket.disconnect(true);
    }
    const { maxEventBytes, reportEnvelopeBytes } = opts.limits;
    decoderOf(socket).authorise((event) => (event === 'fit:report' && s.grant ? s.grant.bytes + reportEnvelopeBytes : maxEventBytes));

    // Every event, known or not, takes a token first; floods are answered FL_ERR_PROTO_RATE_LIMITED and never reach a handler.
    const bucket = new TokenBucket(opts.rateLimit.burst, opts.rateLimit.perSecond, Date.now());
    socket.use((packet, next) => {
      const [event, ...args] = packet as [string, ...unknown[]];
      const ack = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as (a: unknown) => void) : undefined;
      const refuse = (code: ErrorCode, details?: unknown) => {
        count(code);
        ack?.({ ok: false, error: new AppError(code, details).toWire() });
      };
      if (!bucket.take(Date.now())) return refuse('FL_ERR_PROTO_RATE_LIMITED');
      if (!(CLIENT_EVENTS as readonly string[]).includes(event)) return refuse('FL_ERR_PROTO_UNKNOWN_EVENT', { event: String(event).slice(0, 64) });
      const big = args.find(isTooLarge);
      if (big) {
        if (event === 'fit:report' && socket.data.session) {
          socket.data.session.grant = undefined;
          runner.releaseUpload(s.deviceId);
        }
        return refuse('FL_ERR_PROTO_MESSAGE_TOO_LARGE', { event: big.event, bytes: big.size, limit: big.limit });
      }
      next();
    });
    const session = (): DeviceSession => {
      const cur = socket.data.session;
      if (!cur) throw new AppError('FL_ERR_PROTO_NOT_AUTHENTICATED');
      cur.lastSeen = Date.now();
      return cur;
    };

    socket.emit('session', {
      deviceId: s.deviceId,
      sessionId: s.sessionId,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      sessionTimeoutMs: opts.sessionTimeoutMs,
      modelName: runner.record.modelName,
      limits: opts.limits,
    });
    setImmediate(() => runner.poke());

    socket.on(
      'heartbeat',
      validated(HeartbeatSchema, () => {
        session();
        return { serverTime: Date.now() };
      }, count),
    );

    socket.on(
      'fit:ready',
      validated(FitReadySchema, async (m) => {
        const s = session();
        if (m.taskId !== s.taskId) throw new AppError('FL_ERR_AUTH_FORBIDDEN', { why: 'session is for another task' });
        if (m.bytes > coordinator.maxUpdateBytes) throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit: coordinator.maxUpdateBytes, got: m.bytes });
        await coordinator.getRunner(s.taskId).onFitReady(s.deviceId, m.round, m.bytes);
        s.grant = { round: m.round, bytes: m.bytes };
      }, count),
    );

    socket.on(
      'fit:report',
      validated(FitReportSchema, async (m) => {
        const s = session();
        if (m.taskId !== s.taskId) throw new AppError('FL_ERR_AUTH_FORBIDDEN', { why: 'session is for another task' });
        const grant = s.grant;
        s.grant = undefined;
        const r = coordinator.getRunner(s.taskId);
        if (grant && m.delta.byteLength > grant.bytes) {
          r.releaseUpload(s.deviceId);
          throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit: grant.bytes, got: m.delta.byteLength, why: 'larger than announced in fit:ready' });
        }
        await r.onReport(s.deviceId, m);
        coordinator.stats.reportsAccepted++;
        void coordinator.countReport(s.deviceId, true);
      }, (code) => {
        count(code);
        const s = socket.data.session;
        if (s) void coordinator.countReport(s.deviceId, false);
      }, { binaryKeys: ['delta'] }),
    );

    socket.on(
      'fit:failure',
      validated(FitFailureSchema, (m) => {
        const s = session();
        if (m.taskId !== s.taskId) throw new AppError('FL_ERR_AUTH_FORBIDDEN', { why: 'session is for another task' });
        coordinator.getRunner(s.taskId).onDeviceGone(s.deviceId, `device failure: ${m.reason}`);
      }, count),
    );

    socket.on(
      'eval:report',
      validated(EvalReportSchema, (m) => {
        const s = session();
        if (m.taskId !== s.taskId) throw new AppError('FL_ERR_AUTH_FORBIDDEN', { why: 'session is for another task' });
        coordinator.getRunner(s.taskId).onEvalReport(s.deviceId, m);
      }, count),
    );

    socket.on('disconnect', () => {
      const s = socket.data.session;
      if (!s) return;
      if (coordinator.sessions.remove(s)) coordinator.maybeRunner(s.taskId)?.onDeviceGone(s.deviceId, 'disconnected', true);
    });
  });

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - opts.sessionTimeoutMs;
    for (const s of [...coordinator.sessions.all()]) if (s.lastSeen < cutoff) s.socket.disconnect(true);
  }, Math.max(100, Math.floor(opts.heartbeatIntervalMs / 2)));
  sweeper.unref();
  return () => clearInterval(sweeper);
}
