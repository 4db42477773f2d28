import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { importModel, stageLayersModel } from '../registry/model-import.js';
import { importOnnx } from '../registry/onnx-import.js';
import { trialRunOnnx } from '../serving/onnx-runtime.js';
import { lineageOf } from '../registry/lineage.js';
import { teacherShape } from '../registry/model-format.js';
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
export const ONNX_TYPES = ['application/onnx', 'application/x-onnx'] as const;
const UPLOAD_TYPES: readonly string[] = [...TAR_TYPES, ...ONNX_TYPES];

/** The whole body, refused with 413 once it passes `limit` bytes. */
async function readAll(body: AsyncIterable<Uint8Array>, limit: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw new AppError('FL_ERR_UPLOAD_TOO_LARGE', { limit });
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

/**
 * Model import and lineage under /api/v1/models:
 *  - POST /:name/versions with a tar archive of a TensorFlow.js LayersModel directory
 *    (model.json plus weight shards, any order, any subdirectory) as the body: the body streams
 *    to a temp dir and the weights into the blob store (registry/model-import.ts), never whole in
 *    memory and never base64; past --max-upload-bytes it answers 413 FL_ERR_UPLOAD_TOO_LARGE
 *    (from Content-Length before reading, or as the bytes arrive). 201 with the new version.
 *    With Content-Type application/onnx (or application/x-onnx) the body is one ONNX model file:
 *    checked (registry/onnx-import.ts, then a trial run in onnxruntime when installed) and
 *    stored as an ONNX version (artifact `model.onnx`).
 *  - GET /:name/versions/:version/lineage: the version and its ancestors across models.
 */
export const modelUploadRoutes: FastifyPluginAsync<ModelUploadRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const admin = requireRole(opts.auth, ['admin']);
  const readers = requireRole(opts.auth, ['admin', 'viewer', 'device']);
  // Hand the request stream through unread: the handler streams it (fastify's bodyLimit does not apply; maxUploadBytes does).
  for (const type of UPLOAD_TYPES) app.addContentTypeParser(type, (_req, payload, done) => done(null, payload));

  r.post('/api/v1/models/:name/versions', {
    schema: { params: z.object({ name: Name }).strict(), querystring: UploadQuery, tags: ['registry'], summary: 'Import a TensorFlow.js LayersModel (tar of model.json + weight shards) or an ONNX model file as a new version' },
    preHandler: [
      admin,
      async (req) => {
        if (!UPLOAD_TYPES.includes(String(req.headers['content-type'] ?? '').split(';')[0].trim())) {
          throw new AppError('FL_ERR_HTTP_UNSUPPORTED_MEDIA', { expected: UPLOAD_TYPES });
        }
        const declared = Number(req.headers['content-length'] ?? NaN);
        if (declared > opts.maxUploadBytes) throw new AppError('FL_ERR_UPLOAD_TOO_LARGE', { limit: opts.maxUploadBytes, declared });
      },
    ],
  }, async (req, reply) => {
    const body = req.body as unknown as NodeJS.ReadableStream & AsyncIterable<Uint8Array>;
    const onnx = (ONNX_TYPES as readonly string[]).includes(String(req.headers['content-type']).split(';')[0].trim());
    try {
      if (onnx) {
        const v = await importOnnx(opts.registry, {
          model: req.params.name,
          bytes: await readAll(body, opts.maxUploadBytes),
          check: trialRunOnnx,
          tags: req.query.tags,
          by: actorOf(req),
          ...(req.query.description !== undefined ? { description: req.query.description } : {}),
        });
        return reply.status(201).send({ ...v, format: 'onnx' });
      }
      const v = await importModel(opts.registry, {
        model: req.params.name,
        body,
        limitBytes: opts.maxUploadBytes,
        tags: req.query.tags,
        by: actorOf(req),
        ...(req.query.description !== undefined ? { description: req.query.description } : {}),
      });
      const { spec: s, ...rest } = v;
      const spec = s!;
      return reply.status(201).send({ ...rest, format: 'tfjs', inputShape: spec.inputShape, outputs: spec.numClasses, signature: spec.signature, weights: spec.manifest.length, trainableWeights: spec.manifest.filter((s) => s.trainable !== false).length });
    } catch (err) {
      // Refused mid-stream: do not read the rest; close the connection after the answer.
      if (!req.raw.readableEnded) reply.header('connection', 'close');
      throw err;
    }
  });

  /** Metrics the distiller measured (student and teacher), as a JSON object of finite numbers. */
  const StudentQuery = z
    .object({
      metrics: z
        .string()
        .max(4000)
        .default('{}')
        .transform((s, ctx) => {
          try {
            return JSON.parse(s) as unknown;
          } catch {
            ctx.addIssue({ code: 'custom', message: 'metrics must be JSON' });
            return z.NEVER;
          }
        })
        .pipe(z.record(z.string().regex(/^[A-Za-z0-9_]{1,64}$/), z.number().finite()).refine((m) => Object.keys(m).length <= 32, 'at most 32 metrics')),
    })
    .strict();
  r.post('/api/v1/models/:name/versions/:version/variants/distilled', {
    schema: {
      params: z.object({ name: Name, version: z.string().regex(/^[0-9]{1,15}$/) }).strict(),
      querystring: StudentQuery,
      tags: ['registry'],
      summary: 'Add a distilled student (a tfjs LayersModel: tar of model.json + weights) to a tfjs or ONNX version as its "distilled" variant, with the metrics measured',
    },
    preHandler: [
      admin,
      async (req) => {
        if (!TAR_TYPES.includes(String(req.headers['content-type'] ?? '').split(';')[0].trim() as (typeof TAR_TYPES)[number])) throw new AppError('FL_ERR_HTTP_UNSUPPORTED_MEDIA', { expected: TAR_TYPES });
        if (Number(req.headers['content-length'] ?? NaN) > opts.maxUploadBytes) throw new AppError('FL_ERR_UPLOAD_TOO_LARGE', { limit: opts.maxUploadBytes });
      },
    ],
  }, async (req, reply) => {
    const version = Number(req.params.version);
    teacherShape(await opts.registry.getVersion(req.params.name, version)); // 404 / 409 before reading the body
    try {
      const v = await stageLayersModel(opts.registry, { body: req.body as unknown as AsyncIterable<Uint8Array>, limitBytes: opts.maxUploadBytes }, (spec, ref) =>
        opts.registry.addStudent(req.params.name, version, spec, ref, req.query.metrics),
      );
      const { spec: _spec, ...rest } = v;
      return reply.status(201).send(rest);
    } catch (err) {
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
