import type { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { REPORT_META_HEADER } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { countRejection, readableBody, receiveReport } from '../coordinator/report-upload.js';

export interface ReportUploadRoutesOptions {
  coordinator: Coordinator;
}

/**
 * `PUT /api/v1/devices/reports/:token`: the report upload channel (docs/protocol.md, "Report
 * upload"). No bearer credential: the token, issued to the device over its authenticated socket
 * with `fit:upload`, is the capability (bound to device, task, round and base version; single use),
 * and the device must be connected to this node. The body (application/octet-stream) is handed to
 * coordinator/report-upload.ts unread, so fastify's bodyLimit does not apply; the plan's
 * maxUpdateBytes does. Answers the ack `fit:report` gets: 200 `{ ok: true }`, or the error's HTTP
 * status with `{ ok: false, error: { code, message, details } }`.
 */
export const reportUploadRoutes: FastifyPluginAsync<ReportUploadRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  r.put('/api/v1/devices/reports/:token', {
    schema: { params: z.object({ token: z.string().min(1).max(512) }).strict(), tags: ['devices'], summary: 'Upload a fit report (encoded delta as the body; fields in the x-flotilla-report header)' },
  }, async (req, reply) => {
    const len = req.headers['content-length'];
    try {
      await receiveReport(opts.coordinator, {
        token: req.params.token,
        meta: req.headers[REPORT_META_HEADER] as string | undefined,
        declared: len === undefined ? undefined : Number(len),
        body: readableBody(req.body as Readable),
      });
      return reply.header('content-type', 'application/json; charset=utf-8').send('{"ok":true}');
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      countRejection(opts.coordinator, err.code);
      // A body past the limit is not drained to its end: the connection closes after the answer.
      if (err.code === 'FL_ERR_REPORT_TOO_LARGE') void reply.header('connection', 'close');
      return reply.status(err.status).send({ ok: false, error: err.toWire() });
    }
  });
};
