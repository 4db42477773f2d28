import type { z } from 'zod';
import { AppError, toWireError, type ErrorCode, type WireError } from '../errors.js';

type AckFn = (a: { ok: true } | { ok: false; error: WireError }) => void;

/**
 * THE wrapper around every socket event handler: validates the payload with its schema, runs the
 * handler, and maps the outcome to an ack (`{ ok: true, ...result }` or `{ ok: false, error }`).
 * A missing ack callback is tolerated. Nothing the client sends can throw out of here, so a bad
 * message never costs the connection and never reaches round state unvalidated.
 */
export function validated<S extends z.ZodType, R extends object | void>(
  schema: S,
  handler: (msg: z.output<S>) => Promise<R> | R,
  onError: (code: ErrorCode) => void,
): (raw: unknown, ack?: unknown) => Promise<void> {
  return async (raw, ack) => {
    const reply: AckFn = typeof ack === 'function' ? (ack as AckFn) : () => undefined;
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      onError('FL_ERR_PROTO_INVALID_MESSAGE');
      const issues = parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
      reply({ ok: false, error: new AppError('FL_ERR_PROTO_INVALID_MESSAGE', { issues }).toWire() });
      return;
    }
    try {
      const result = await handler(parsed.data);
      reply({ ok: true, ...(result ?? {}) } as { ok: true });
    } catch (err) {
      const wire = toWireError(err);
      onError(wire.code);
      reply({ ok: false, error: wire });
    }
  };
}
