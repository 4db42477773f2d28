import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { layersModelJson } from '@flotilla/client/protocol';
import { AppError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { BlobStore } from '../store/blob-store.js';
import { requireRole, type AuthConfig } from './auth.js';

export interface RegistryRoutesOptions {
  store: Store;
  blobs: BlobStore;
  auth: AuthConfig;
}

const VersionParams = z.object({ name: z.string().min(1).max(128), version: z.coerce.number().int().min(1) });

/**
 * tfjs LayersModel artifacts of registry versions: `model.json` (loadable by tf.loadLayersModel)
 * and `weights.bin` (the flat float32 weights). Versions are immutable, so responses carry a
 * strong ETag (the weights' sha256) and `Cache-Control: immutable`.
 */
export const registryRoutes: FastifyPluginAsync<RegistryRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const readers = requireRole(opts.auth, ['admin', 'viewer', 'device']);

  const versionOf = async (name: string, version: number) => {
    const v = await opts.store.getVersion(name, version);
    if (!v) {
      if (!(await opts.store.getModel(name))) throw new AppError('FL_ERR_MODEL_NOT_FOUND', { model: name });
      throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model: name, version });
    }
    return v;
  };

  r.get('/api/v1/models/:name/versions/:version/model.json', { schema: { params: VersionParams }, preHandler: readers }, async (req, reply) => {
    const v = await versionOf(req.params.name, req.params.version);
    const w = v.artifacts.find((a) => a.name === 'weights')!;
    const etag = `"${w.sha256}"`;
    reply.header('etag', etag).header('cache-control', 'public, max-age=31536000, immutable');
    if (req.headers['if-none-match'] === etag) return reply.status(304).send();
    return layersModelJson(v.spec, 'weights.bin', { model: v.model, version: v.version });
  });

  r.get('/api/v1/models/:name/versions/:version/weights.bin', { schema: { params: VersionParams }, preHandler: readers }, async (req, reply) => {
    const v = await versionOf(req.params.name, req.params.version);
    const w = v.artifacts.find((a) => a.name === 'weights')!;
    const etag = `"${w.sha256}"`;
    reply.header('etag', etag).header('cache-control', 'public, max-age=31536000, immutable');
    if (req.headers['if-none-match'] === etag) return reply.status(304).send();
    const bytes = await opts.blobs.get(w.sha256);
    if (!bytes) throw new AppError('FL_ERR_BLOB_CORRUPT', { sha256: w.sha256, why: 'missing' });
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
};
