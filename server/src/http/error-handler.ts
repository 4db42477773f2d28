import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError, ERROR_REGISTRY, type ErrorCode } from '../errors.js';

/**
 * THE HTTP error mapping: AppError -> its registry status and `{ error: { code, message, details } }`;
 * fastify's own validation/body/content-type errors -> the matching FL_ERR_HTTP_* code; anything
 * else -> 500 FL_ERR_INTERNAL without internals. Unknown routes -> FL_ERR_HTTP_NOT_FOUND.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError | Error, req, reply) => {
    if (err instanceof AppError) {
      void reply.status(err.status).send({ error: err.toWire() });
      return;
    }
    const fe = err as FastifyError & { validation?: unknown };
    let code: ErrorCode | null = null;
    let details: unknown;
    if (fe.validation) {
      code = 'FL_ERR_HTTP_VALIDATION';
      details = { issues: fe.validation, context: (fe as { validationContext?: string }).validationContext };
    } else if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') code = 'FL_ERR_HTTP_PAYLOAD_TOO_LARGE';
    else if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') code = 'FL_ERR_HTTP_UNSUPPORTED_MEDIA';
    else if (fe.statusCode === 429) code = 'FL_ERR_HTTP_RATE_LIMITED';
    else if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      code = 'FL_ERR_HTTP_VALIDATION';
      details = { reason: fe.message };
    }
    if (code) {
      void reply.status(ERROR_REGISTRY[code].status).send({ error: { code, message: ERROR_REGISTRY[code].message, ...(details !== undefined ? { details } : {}) } });
      return;
    }
    req.log.error({ err }, 'unhandled error');
    void reply.status(500).send({ error: { code: 'FL_ERR_INTERNAL', message: ERROR_REGISTRY.FL_ERR_INTERNAL.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'FL_ERR_HTTP_NOT_FOUND', message: ERROR_REGISTRY.FL_ERR_HTTP_NOT_FOUND.message, details: { method: req.method, url: req.url.slice(0, 256) } } });
  });
}
