import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_REGISTRY } from '../errors.js';

/**
 * fastify's `frameworkErrors`: errors its router raises before any route or error handler runs
 * (a URL that does not decode, a path parameter longer than maxParamLength). Answered in the one
 * error shape with FL_ERR_HTTP_VALIDATION instead of fastify's own body.
 */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const e = ERROR_REGISTRY.FL_ERR_HTTP_VALIDATION;
  void reply.status(e.status).send({ error: { code: 'FL_ERR_HTTP_VALIDATION', message: e.message, details: { reason: err.code ?? 'bad request' } } });
}
