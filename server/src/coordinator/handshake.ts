import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HandshakeAuthSchema, PROTOCOL_VERSION } from '@flotilla/protocol';
import type { FailureThrottle } from '../auth/failure-throttle.js';
import { AppError, toWireError, type ErrorCode, type WireError } from '../errors.js';
import type { Coordinator } from './coordinator.js';
import type { AdmittedDevice, DeviceSocket } from './sessions.js';
import { isPlainObject } from './validated-handler.js';

export interface HandshakeOptions {
  /** The failure throttle shared with the REST guards; null: no throttle. */
  throttle: FailureThrottle | null;
  /** Client address of the handshake request (honours trustProxy like fastify's request.ip). */
  clientAddress: (req: IncomingMessage) => string;
  /** Counts each refusal by code (coordinator stats). */
  count: (code: ErrorCode) => void;
}

/**
 * Checks the socket.io handshake `auth` before the connection is accepted (`io.use`), in this
 * order: shape (FL_ERR_PROTO_INVALID_MESSAGE), protocol version (FL_ERR_PROTO_VERSION_MISMATCH),
 * credential (FL_ERR_AUTH_INVALID_TOKEN, or FL_ERR_AUTH_THROTTLED once the address is over its
 * failure budget), task (FL_ERR_TASK_NOT_FOUND), device id (FL_ERR_CLIENT_BOUND,
 * FL_ERR_CLIENT_REVOKED). A refusal reaches the device as socket.io's `connect_error` whose
 * `data` is the wire error `{ code, message, details? }`; the socket never joins, so it cannot
 * send events. Only credential failures count against the throttle, and a valid credential is
 * never refused by it.
 */
export function handshakeMiddleware(coordinator: Coordinator, opts: HandshakeOptions) {
  return (socket: DeviceSocket, next: (err?: Error) => void): void => {
    admit(coordinator, opts, socket).then(
      (admitted) => {
        socket.data.admitted = admitted;
        next();
      },
      (err: unknown) => {
        const wire = toWireError(err);
        opts.count(wire.code);
        next(Object.assign(new Error(wire.message), { data: wire satisfies WireError }));
      },
    );
  };
}

async function admit(coordinator: Coordinator, opts: HandshakeOptions, socket: DeviceSocket): Promise<AdmittedDevice> {
  const auth: unknown = socket.handshake.auth;
  const version = isPlainObject(auth) ? auth.protocolVersion : undefined;
  if (typeof version === 'number' && version !== PROTOCOL_VERSION) {
    throw new AppError('FL_ERR_PROTO_VERSION_MISMATCH', { server: PROTOCOL_VERSION, client: version });
  }
  if (!isPlainObject(auth) || Object.keys(auth).length === 0) throw new AppError('FL_ERR_AUTH_REQUIRED', { why: 'send credentials in the handshake auth object' });
  const parsed = HandshakeAuthSchema.safeParse(auth);
  if (!parsed.success) {
    throw new AppError('FL_ERR_PROTO_INVALID_MESSAGE', { issues: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) });
  }
  const m = parsed.data;
  let tokenId: string | null;
  try {
    ({ tokenId } = await coordinator.authenticateDevice(m.token, m.taskId));
  } catch (err) {
    const over = opts.throttle?.fail(opts.clientAddress(socket.request));
    if (over) throw new AppError('FL_ERR_AUTH_THROTTLED', over);
    throw err;
  }
  coordinator.getRunner(m.taskId);
  const deviceId = m.deviceId ?? `dev-${randomUUID()}`;
  await coordinator.admitDevice(deviceId, m.taskId, tokenId);
  return { deviceId, taskId: m.taskId, tokenId, ...(m.backend ? { backend: m.backend } : {}) };
}
