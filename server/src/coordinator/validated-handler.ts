import type { z } from 'zod';
import { AppError, toWireError, type ErrorCode, type WireError } from '../errors.js';

type AckFn = (a: { ok: true } | { ok: false; error: WireError }) => void;

function isBinary(v: unknown): boolean {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

/** A JSON object as socket.io's parser makes it (not an array, a Buffer or a class instance). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Where a payload is not plain JSON data (binary outside the fields that take it, class
 * instances), or null. Runs before the schema: a typed array or Buffer where an object is expected
 * would make a strict object schema walk every byte as a key.
 */
function notPlain(v: unknown, binaryKeys: readonly string[], path = '', depth = 0): string | null {
  if (v === null || typeof v !== 'object') return null;
  if (isBinary(v)) return depth === 1 && binaryKeys.includes(path) ? null : path || '(payload)';
  if (depth > 8) return path;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const bad = notPlain(v[i], binaryKeys, `${path}.${i}`, depth + 1);
      if (bad) return bad;
    }
    return null;
  }
  if (!isPlainObject(v)) return path || '(payload)';
  for (const k of Object.keys(v)) {
    const bad = notPlain(v[k], binaryKeys, path ? `${path}.${k}` : k, depth + 1);
    if (bad) return bad;
  }
  return null;
}

export interface ValidatedOptions {
  /** Top-level fields that carry binary (fit:report: `delta`); binary anywhere else is refused. */
  binaryKeys?: readonly string[];
}

/**
 * THE wrapper around every socket event handler: checks the call's shape (exactly one payload, a
 * plain object, then an optional ack callback), validates the payload with its schema, runs the
 * handler, and maps the outcome to an ack (`{ ok: true, ...result }` or `{ ok: false, error }`).
 * Every refusal is a coded FL_ERR_PROTO_INVALID_MESSAGE when the client asked for an ack; without
 * an ack callback it is only counted. Nothing the client sends can throw out of here, so a bad
 * message never costs the connection and never reaches round state unvalidated.
 */
export function validated<S extends z.ZodType, R extends object | void>(
  schema: S,
  handler: (msg: z.output<S>) => Promise<R> | R,
  onError: (code: ErrorCode) => void,
  opts: ValidatedOptions = {},
): (...args: unknown[]) => Promise<void> {
  const binaryKeys = opts.binaryKeys ?? [];
  return async (...args) => {
    const last = args[args.length - 1];
    const reply: AckFn = typeof last === 'function' ? (args.pop() as AckFn) : () => undefined;
    const refuse = (details: unknown) => {
      onError('FL_ERR_PROTO_INVALID_MESSAGE');
      reply({ ok: false, error: new AppError('FL_ERR_PROTO_INVALID_MESSAGE', details).toWire() });
    };
    if (args.length !== 1) return refuse({ why: `expected exactly one payload argument before the ack callback, got ${args.length}` });
    const raw = args[0];
    if (!isPlainObject(raw)) return refuse({ why: 'the payload must be a JSON object' });
    const bad = notPlain(raw, binaryKeys);
    if (bad) return refuse({ why: 'binary data or a non-plain value where JSON is expected', path: bad });
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      return refuse({ issues: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) });
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
