import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { importModel } from '../registry/model-import.js';
import { lineageOf } from '../registry/lineage.js';
import type { Registry } from '../registry/registry.js';
import { actorOf, requireRole, type AuthConfig } from './auth.js';

export interface ModelUploadRoutesOptions {
  registry: Registry;
  auth: AuthConfig;
  /** Largest upload accepted, bytes (the server's --max-upload-bytes). */
  maxUploadBytes: number;
}

const Name = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/);
const Tag = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/);
const UploadQuery = z
  .object({
    description: z.string().max(1000).optional(),
    /** Comma-separated tags. */
    tags: z
      .string()
      .max(1000)
      .optional()
      .transform((s) => (s ? s.split(',').filter(Boolean) : []))
      .pipe(z.array(Tag).max(32)),
  })
  .strict();
export const TAR_TYPES = ['application/x-tar', 'application/tar'] as const;

/**
 * Model import and lineage under /api/v1/models:
 *  - POST /:name/versions with a tar archive of a TensorFlow.js LayersModel directory
 *    (model.json plus weight shards, any order, any subdirectory) as the body: the body streams
 *    to a temp dir and the weights into the blob store (registry/model-import.ts), never whole in
 *    memory and never base64; past --max-upload-bytes it answers 413 FL_ERR_UPLOAD_TOO_LARGE
 *    (from Content-Length before reading, or as the bytes arrive). 201 with the new version.
 *  - GET /:name/versions/:version/lineage: the version and its ancestors across models.
 */
export const modelUploadRoutes: FastifyPluginAsync<ModelUploadRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(opts.auth, ['admin']);
  const readers = requireRole(opts.auth, ['admin', 'viewer', 'device']);
  // Hand the request stream through unread: the handler streams it (fastify's bodyLimit does not apply; maxUploadBytes does).
  for (const type of TAR_TYPES) app.addContentTypeParser(type, (_req, payload, done) => done(null, payload));

  r.post('/api/v1/models/:name/versions', {
    schema: { params: z.object({ name: Name }).strict(), querystring: UploadQuery, tags: ['registry'], summary: 'Import a TensorFlow.js LayersModel (tar of model.json + weight shards) as a new version' },
    preHandler: [
      admin,
      async (req) => {
        if (!TAR_TYPES.includes(String(req.headers['content-type'] ?? '').split(';')[0].trim() as (typeof TAR_TYPES)[number])) {
          throw new AppError('FL_ERR_HTTP_UNSUPPORTED_MEDIA', { expected: TAR_TYPES });
        }
        const declared = Number(req.headers['content-length'] ?? NaN);
        if (declared > opts.maxUploadBytes) throw new AppError('FL_ERR_UPLOAD_TOO_LARGE', { limit: opts.maxUploadBytes, declared });
      },
    ],
  }, async (req, reply) => {
    const body = req.body as unknown as NodeJS.ReadableStream & AsyncIterable<Uint8Array>;
    try {
      const v = await importModel(opts.registry, {
        model: req.params.name,
        body,
        limitBytes: opts.maxUploadBytes,
        tags: req.query.tags,
        by: actorOf(req),
        ...(req.query.description !== undefined ? { description: req.query.description } : {}),
      });
      const { spec, ...rest } = v;
      return reply.status(201).send({ ...rest, inputShape: spec.inputShape, outputs: spec.numClasses, weights: spec.manifest.length, trainableWeights: spec.manifest.filter((s) => s.trainable !== false).length });
    } catch (err) {
      // Refused mid-stream: do not read the rest; close the connection after the answer.
      if (!req.raw.readableEnded) reply.header('connection', 'close');
      throw err;
    }
  });

  r.get('/api/v1/models/:name/versions/:version/lineage', {
    schema: { params: z.object({ name: Name, version: z.string().min(1).max(64) }).strict(), tags: ['registry'], summary: 'A version and its ancestors (across models: fine-tunes name their parent)' },
    preHandler: readers,
  }, async (req) => {
    const { record } = await opts.registry.resolve(req.params.name, req.params.version);
    return { model: record.model, version: record.version, lineage: await lineageOf(opts.registry, record) };
  });
};
