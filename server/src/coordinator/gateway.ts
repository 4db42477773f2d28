import { randomUUID } from 'node:crypto';
import type { Server } from 'socket.io';
import {
  CLIENT_EVENTS,
  EvalReportSchema,
  FitFailureSchema,
  FitReadySchema,
  FitReportSchema,
  HeartbeatSchema,
  HelloSchema,
  PROTOCOL_VERSION,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from '@flotilla/protocol';
import { AppError, type ErrorCode } from '../errors.js';
import type { Coordinator } from './coordinator.js';
import type { DeviceSession, DeviceSocket, SocketData } from './sessions.js';
import { validated } from './validated-handler.js';
import { TokenBucket } from './rate-limiter.js';

export interface GatewayOptions {
  heartbeatIntervalMs: number;
  sessionTimeoutMs: number;
  /** Per-connection message budget: burst size and sustained messages per second. */
  rateLimit: { burst: number; perSecond: number };
}

/**
 * The socket.io boundary. Every event goes through `validated`; everything but hello needs a
 * session first. Sessions idle (no message, no heartbeat) for sessionTimeoutMs are disconnected.
 * Returns a function that stops the idle sweeper.
 */
export function attachGateway(
  io: Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>,
  coordinator: Coordinator,
  opts: GatewayOptions,
): () => void {
  const count = (code: ErrorCode) => {
    coordinator.stats.rejected[code] = (coordinator.stats.rejected[code] ?? 0) + 1;
  };

  io.on('connection', (socket: DeviceSocket) => {
    // Floods from one device are answered with FL_ERR_PROTO_RATE_LIMITED and never reach a handler.
    const bucket = new TokenBucket(opts.rateLimit.burst, opts.rateLimit.perSecond, Date.now());
    socket.use((packet, next) => {
      if (bucket.take(Date.now())) return next();
      count('FL_ERR_PROTO_RATE_LIMITED');
      const ack = packet[packet.length - 1];
      if (typeof ack === 'function') ack({ ok: false, error: new AppError('FL_ERR_PROTO_RATE_LIMITED').toWire() });
    });
    const session = (): DeviceSession => {
      const s = socket.data.session;
      if (!s) throw new AppError('FL_ERR_PROTO_NOT_AUTHENTICATED');
      s.lastSeen = Date.now();
      return s;
    };

    socket.on(
      'hello',
      validated(
        HelloSchema,
        async (m) => {
          if (m.protocolVersion !== PROTOCOL_VERSION) {
            throw new AppError('FL_ERR_PROTO_VERSION_MISMATCH', { server: PROTOCOL_VERSION, client: m.protocolVersion });
          }
          if (socket.data.session) throw new AppError('FL_ERR_PROTO_INVALID_MESSAGE', { why: 'hello already accepted on this connection' });
          const { tokenId } = await coordinator.authenticateDevice(m.token, m.taskId);
          const runner = coordinator.getRunner(m.taskId);
          const deviceId = m.deviceId ?? `dev-${randomUUID()}`;
          await coordinator.assertClientAllowed(deviceId, m.taskId, tokenId);
          const now = Date.now();
          const s: DeviceSession = { deviceId, sessionId: randomUUID(), taskId: m.taskId, socket, connectedAt: now, lastSeen: now, backend: m.backend, tokenId };
          socket.data.session = s;
          const replaced = coordinator.sessions.add(s);
          if (replaced) {
            replaced.socket.data.session = undefined;
            replaced.socket.disconnect(true);
          }
          await coordinator.touchClient(deviceId, m.taskId);
          setImmediate(() => runner.poke());
          return {
            deviceId,
            sessionId: s.sessionId,
            heartbeatIntervalMs: opts.heartbeatIntervalMs,
            sessionTimeoutMs: opts.sessionTimeoutMs,
            modelName: runner.record.modelName,
          };
        },
        count,
      ),
    );

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
        await coordinator.getRunner(s.taskId).onFitReady(s.deviceId, m.round, m.bytes);
      }, count),
    );

    socket.on(
      'fit:report',
      validated(FitReportSchema, async (m) => {
        const s = session();
        if (m.taskId !== s.taskId) throw new AppError('FL_ERR_AUTH_FORBIDDEN', { why: 'session is for another task' });
        await coordinator.getRunner(s.taskId).onReport(s.deviceId, m);
        coordinator.stats.reportsAccepted++;
        void coordinator.countReport(s.deviceId, true);
      }, (code) => {
        count(code);
        const s = socket.data.session;
        if (s) void coordinator.countReport(s.deviceId, false);
      }),
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

    socket.onAny((event: string, ...args: unknown[]) => {
      if ((CLIENT_EVENTS as readonly string[]).includes(event)) return;
      count('FL_ERR_PROTO_UNKNOWN_EVENT');
      const ack = args[args.length - 1];
      if (typeof ack === 'function') ack({ ok: false, error: new AppError('FL_ERR_PROTO_UNKNOWN_EVENT', { event: String(event).slice(0, 64) }).toWire() });
    });

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
