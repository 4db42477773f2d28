import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { Registry } from '../registry/registry.js';
import { VARIANTS, type WeightsVariant } from '../registry/variants.js';
import type { BlobStore } from '../store/blob-store.js';
import type { VersionRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { actorOf, requireRole, type AuthConfig } from './auth.js';
import { modelScope, readableModels } from './scope.js';

export interface RegistryRoutesOptions {
  store: Store;
  blobs: BlobStore;
  auth: AuthConfig;
  /** The registry to serve; built over store + blobs (default variants, no evaluator) when absent. */
  registry?: Registry;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';
const BASE = '/api/v1/models';

const Name = z.string().min(1).max(128);
/** A version number or an alias; resolved by the registry (which answers 400/404 with codes). */
const Ref = z.string().min(1).max(64);
const ModelParams = z.object({ name: Name }).strict();
const VersionParams = z.object({ name: Name, version: Ref }).strict();
const ArtifactParams = z.object({ name: Name, version: Ref, artifact: z.string().min(1).max(64) }).strict();
const AliasParams = z.object({ name: Name, alias: z.string().min(1).max(64) }).strict();
const VariantQuery = z.object({ variant: z.enum(['float32', ...VARIANTS]).default('float32') }).strict();
const Bool = z.enum(['true', 'false']).transform((x) => x === 'true');
const ListQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    offset: z.coerce.number().int().min(0).default(0),
    tag: z.string().min(1).max(64).optional(),
    alias: z.string().min(1).max(64).optional(),
    includeArchived: Bool.default(false),
  })
  .strict();
const SetAliasBody = z.object({ version: z.union([z.number().int().min(1), Ref]) }).strict();
const PatchVersionBody = z.object({ archived: z.boolean() }).strict();

const versionUrl = (name: string, version: number) => `${BASE}/${encodeURIComponent(name)}/versions/${version}`;

/** Without the spec (topology and manifest are large): what listings show. */
function summary(v: VersionRecord) {
  const { spec: _spec, ...rest } = v;
  return { ...rest, links: { self: versionUrl(v.model, v.version), modelJson: `${versionUrl(v.model, v.version)}/model.json` } };
}

function notModified(req: FastifyRequest, etag: string): boolean {
  const h = req.headers['if-none-match'];
  if (!h) return false;
  return h === '*' || h.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/** Immutable-URL headers; true when the client's copy is current (the caller answers 304). */
function cacheHeaders(req: FastifyRequest, reply: FastifyReply, etag: string): boolean {
  reply.header('etag', etag).header('cache-control', IMMUTABLE);
  return notModified(req, etag);
}

/** The immutable URL of the same resource when the path named an alias. */
function redirectToVersion(req: FastifyRequest, reply: FastifyReply, name: string, version: number, rest = ''): FastifyReply {
  const q = req.url.indexOf('?');
  const location = `${versionUrl(name, version)}${rest}${q >= 0 ? req.url.slice(q) : ''}`;
  return reply.header('cache-control', 'no-cache').redirect(location, 307);
}

/**
 * The model registry over HTTP: listings, version metadata, tfjs LayersModel artifacts and alias
 * management. Contracts:
 *  - `/versions/{n}/...` URLs are immutable: they carry a strong ETag (304 on If-None-Match) and
 *    `Cache-Control: immutable`; `{version}` given as an alias answers 307 to the immutable URL;
 *  - `model.json` names its weights as `../{n}/weights.bin`, so tf.loadLayersModel on an alias URL
 *    still reads the weights of the version the model.json described, and `?variant=` (which
 *    tfjs appends to weight URLs) selects the same variant for both;
 *  - artifact bytes are verified before they are sent; a corrupt blob answers 500
 *    FL_ERR_BLOB_CORRUPT and is never served;
 *  - versions never change: PUT/DELETE on a version answer 409 FL_ERR_VERSION_IMMUTABLE; only
 *    `archived` may be patched;
 *  - alias changes are recorded with the authenticated actor (`actorOf`), never a name the
 *    request body claims.
 */
export const registryRoutes: FastifyPluginAsync<RegistryRoutesOptions> = async (app, opts) => {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const reader = requireRole(opts.auth, ['admin', 'viewer', 'device']);
  // Device tokens read only their task's model (scope.ts); admin and viewer read every model.
  const readers = [reader, modelScope(opts.store)];
  const admin = requireRole(opts.auth, ['admin']);
  const reg = opts.registry ?? new Registry(opts.store, opts.blobs);

  // ---- listings and metadata ----

  r.get(BASE, { preHandler: reader }, async (req) => {
    const models = await reg.listModels();
    const scope = await readableModels(opts.store, req.principal);
    return { models: scope ? models.filter((m) => scope.has(m.name)) : models };
  });

  r.get(`${BASE}/:name`, { schema: { params: ModelParams }, preHandler: readers }, async (req) => {
    const model = await reg.getModel(req.params.name);
    const aliases = await reg.listAliases(req.params.name);
    return { model: { ...model, latestVersion: aliases.find((a) => a.alias === 'latest')?.version ?? null }, aliases };
  });

  r.get(`${BASE}/:name/versions`, { schema: { params: ModelParams, querystring: ListQuery }, preHandler: readers }, async (req) => {
    const q = req.query;
    const page = await reg.listVersions(req.params.name, { ...q, limit: q.limit + 1 });
    const more = page.length > q.limit;
    return {
      model: req.params.name,
      versions: page.slice(0, q.limit).map(summary),
      limit: q.limit,
      offset: q.offset,
      nextOffset: more ? q.offset + q.limit : null,
    };
  });

  r.get(`${BASE}/:name/versions/:version`, { schema: { params: VersionParams }, preHandler: readers }, async (req, reply) => {
    const { record, alias } = await reg.resolve(req.params.name, req.params.version);
    if (alias) return redirectToVersion(req, reply, record.model, record.version);
    // Archived state and late metrics may change, so metadata is revalidated rather than immutable.
    const aliases = (await reg.listAliases(record.model)).filter((a) => a.version === record.version).map((a) => a.alias);
    return { ...summary(record), spec: record.spec, aliases };
  });

  r.patch(`${BASE}/:name/versions/:version`, { schema: { params: VersionParams, body: PatchVersionBody }, preHandler: admin }, async (req) => {
    const { record } = await reg.resolve(req.params.name, req.params.version);
    return summary(await reg.archive(record.model, record.version, req.body.archived));
  });

  for (const method of ['put', 'delete'] as const) {
    r[method](`${BASE}/:name/versions/:version`, { schema: { params: VersionParams }, preHandler: admin }, async (req) => {
      const { record } = await reg.resolve(req.params.name, req.params.version);
      throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model: record.model, version: record.version });
    });
  }

  // ---- tfjs artifacts ----

  r.get(`${BASE}/:name/versions/:version/model.json`, { schema: { params: VersionParams, querystring: VariantQuery }, preHandler: readers }, async (req, reply) => {
    const { record, alias } = await reg.resolve(req.params.name, req.params.version);
    if (alias) return redirectToVersion(req, reply, record.model, record.version, '/model.json');
    const variant = req.query.variant as WeightsVariant;
    const { json, etag } = reg.modelJson(record, `../${record.version}/weights.bin`, variant);
    if (cacheHeaders(req, reply, etag)) return reply.status(304).send();
    return json;
  });

  r.get(`${BASE}/:name/versions/:version/weights.bin`, { schema: { params: VersionParams, querystring: VariantQuery }, preHandler: readers }, async (req, reply) => {
    const { record, alias } = await reg.resolve(req.params.name, req.params.version);
    if (alias) return redirectToVersion(req, reply, record.model, record.version, '/weights.bin');
    const { bytes, etag } = await reg.tfjsWeights(record, req.query.variant as WeightsVariant);
    if (cacheHeaders(req, reply, etag)) return reply.status(304).send();
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  /** The stored bytes of any artifact (e.g. the compact int8 or sparse encodings), verified. */
  r.get(`${BASE}/:name/versions/:version/artifacts/:artifact`, { schema: { params: ArtifactParams }, preHandler: readers }, async (req, reply) => {
    const { record, alias } = await reg.resolve(req.params.name, req.params.version);
    if (alias) return redirectToVersion(req, reply, record.model, record.version, `/artifacts/${encodeURIComponent(req.params.artifact)}`);
    const ref = record.artifacts.find((a) => a.name === req.params.artifact);
    if (ref && cacheHeaders(req, reply, `"${ref.sha256}"`)) return reply.status(304).send();
    const { bytes } = await reg.readArtifact(record, req.params.artifact);
    reply.header('x-checksum-sha256', ref!.sha256);
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  // ---- aliases ----

  r.get(`${BASE}/:name/aliases`, { schema: { params: ModelParams }, preHandler: readers }, async (req) => ({ aliases: await reg.listAliases(req.params.name) }));

  r.put(`${BASE}/:name/aliases/:alias`, { schema: { params: AliasParams, body: SetAliasBody }, preHandler: admin }, async (req) =>
    reg.setAlias(req.params.name, req.params.alias, req.body.version, actorOf(req)),
  );

  r.delete(`${BASE}/:name/aliases/:alias`, { schema: { params: AliasParams }, preHandler: admin }, async (req, reply) => {
    await reg.deleteAlias(req.params.name, req.params.alias, actorOf(req));
    return reply.status(204).send();
  });

  r.get(`${BASE}/:name/aliases/:alias/history`, { schema: { params: AliasParams }, preHandler: readers }, async (req) => ({
    history: await reg.aliasHistory(req.params.name, req.params.alias),
  }));

  r.post(`${BASE}/:name/aliases/:alias/rollback`, { schema: { params: AliasParams }, preHandler: admin }, async (req) =>
    reg.rollbackAlias(req.params.name, req.params.alias, actorOf(req)),
  );
};
