import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../errors.js';
import { nestRows, parseTfServingBody } from '../serving/infer-input.js';
import { unpackRows } from '../serving/model-io.js';
import type { Serving } from '../serving/serving.js';
import { requireRole } from './auth.js';
import { endpointScope } from './scope.js';
import { VariantQuery, inferenceErrorHandler, requestIdOf, routingKeyOf, servedHeaders, useInferJsonParser, type InferenceRoutesOptions, type VariantName } from './inference-routes.js';

const Name = z.string().min(1).max(160);
const PredictBody = z.object({ signature_name: z.string().max(128).optional(), instances: z.unknown().optional(), inputs: z.unknown().optional() });

/** "mnist:predict" -> ["mnist", "predict"]; fastify has no literal-colon suffix in paths, so the verb is parsed here. */
function verb(segment: string): [string, string] {
  const i = segment.lastIndexOf(':');
  if (i <= 0) throw new AppError('FL_ERR_HTTP_NOT_FOUND', { why: 'expected {name}:predict' });
  const v = segment.slice(i + 1);
  if (v !== 'predict') throw new AppError('FL_ERR_SERVING_BAD_INPUT', { why: `method '${v}' is not supported; use :predict`, method: v });
  return [segment.slice(0, i), v];
}

/**
 * TF Serving REST API: `POST /v1/models/{name}[/versions/{v}|/labels/{alias}]:predict` with
 * `instances` (row format, answered as `predictions`) or `inputs` (columnar, answered as
 * `outputs`), and `GET /v1/models/{name}[/versions/{v}]` status. `{name}` is a deployment or a
 * model, as in the OIP routes; answers also carry `model_version`. `GET .../metadata` answers the
 * serving_default signature. `?variant=` (an extension, as on the OIP routes) picks a version's
 * weights variant or distilled student on every route.
 */
export const tfServingRoutes: FastifyPluginAsync<InferenceRoutesOptions> = async (app, opts) => {
  app.setErrorHandler(inferenceErrorHandler);
  useInferJsonParser(app);
  const r = app.withTypeProvider<ZodTypeProvider>();
  const serving: Serving = opts.serving;
  const callers = opts.publicInference ? [] : [requireRole(opts.auth, ['inference'])];
  const scoped = [...callers, endpointScope()];

  const predict = async (req: FastifyRequest, reply: FastifyReply, name: string, body: z.infer<typeof PredictBody>, ref: string | undefined, variant: VariantName) => {
    let format = 'row' as 'row' | 'columnar';
    const res = await serving.infer({
      endpoint: name,
      ref,
      variant,
      requestId: requestIdOf(req),
      routingKey: routingKeyOf(req),
      parse: (io, maxRows) => {
        const parsed = parseTfServingBody(body as { instances?: unknown; inputs?: unknown }, io, maxRows);
        format = parsed.format;
        return parsed.input;
      },
    });
    servedHeaders(reply, res);
    const io = res.io;
    if (io.outputs.length === 1) {
      const rows = nestRows(res.output, res.rows, io.outWidth);
      return format === 'row' ? { predictions: rows, model_version: String(res.version) } : { outputs: rows, model_version: String(res.version) };
    }
    // Several outputs, as TF Serving answers them: row format one object per example, columnar one tensor per output.
    const blocks = unpackRows(res.output, io.outputs, io.outWidth, res.rows).map((b, k) => nestRows(b, res.rows, io.outputs[k].width));
    if (format === 'columnar') return { outputs: Object.fromEntries(io.outputs.map((t, k) => [t.name, blocks[k]])), model_version: String(res.version) };
    const predictions = Array.from({ length: res.rows }, (_, r) => Object.fromEntries(io.outputs.map((t, k) => [t.name, blocks[k][r]])));
    return { predictions, model_version: String(res.version) };
  };

  r.post('/v1/models/:name', { schema: { params: z.object({ name: Name }).strict(), querystring: VariantQuery, body: PredictBody }, preHandler: [...callers, endpointScope((n) => verb(n)[0])] }, async (req, reply) => {
    const [name] = verb(req.params.name);
    return predict(req, reply, name, req.body, undefined, req.query.variant);
  });
  r.post(
    '/v1/models/:name/versions/:version',
    { schema: { params: z.object({ name: Name, version: z.string().min(1).max(64) }).strict(), querystring: VariantQuery, body: PredictBody }, preHandler: scoped },
    async (req, reply) => {
      const [v] = verb(req.params.version);
      if (!/^[0-9]{1,15}$/.test(v)) throw new AppError('FL_ERR_SERVING_BAD_INPUT', { why: 'versions are numbers; use /labels/{alias} for aliases', version: v });
      return predict(req, reply, req.params.name, req.body, v, req.query.variant);
    },
  );
  r.post(
    '/v1/models/:name/labels/:label',
    { schema: { params: z.object({ name: Name, label: z.string().min(1).max(64) }).strict(), querystring: VariantQuery, body: PredictBody }, preHandler: scoped },
    async (req, reply) => {
      const [label] = verb(req.params.label);
      return predict(req, reply, req.params.name, req.body, label, req.query.variant);
    },
  );

  const status = async (name: string, ref: string | undefined, variant: VariantName) => {
    const targets = await serving.endpointVersions(name, { ref, variant });
    const seen = new Set<number>();
    return {
      model_version_status: targets
        .filter((t) => !seen.has(t.version) && seen.add(t.version))
        .map((t) => ({
          version: String(t.version),
          // Versions load on demand: one not loaded yet is servable and reported as START.
          state: t.loaded ? 'AVAILABLE' : t.loading ? 'LOADING' : 'START',
          status: { error_code: 'OK', error_message: '' },
        })),
    };
  };
  /** TF Serving's GetModelMetadata: the serving_default signature (dtypes and shapes, -1 = batch). */
  const metadata = async (name: string, ref: string | undefined, variant: VariantName) => {
    const t = (await serving.endpointVersions(name, { ref, variant }))[0];
    const io = (await serving.cache.get(t.model, t.version, t.variant)).io;
    const DTYPES: Record<string, string> = { FP32: 'DT_FLOAT', INT64: 'DT_INT64', INT32: 'DT_INT32' };
    const tensor = (n: string, shape: number[], datatype = 'FP32') => ({ dtype: DTYPES[datatype], tensor_shape: { dim: [-1, ...shape].map((d) => ({ size: String(d), name: '' })), unknown_rank: false }, name: n });
    return {
      model_spec: { name, signature_name: '', version: String(t.version) },
      metadata: {
        signature_def: {
          signature_def: {
            serving_default: {
              inputs: Object.fromEntries(io.inputs.map((x) => [x.name, tensor(x.name, x.shape, x.datatype)])),
              outputs: Object.fromEntries(io.outputs.map((x) => [x.name, tensor(x.name, x.shape)])),
              method_name: 'tensorflow/serving/predict',
            },
          },
        },
      },
    };
  };
  const NameParams = z.object({ name: Name }).strict();
  const VersionParams = z.object({ name: Name, version: z.string().regex(/^[0-9]{1,15}$/) }).strict();
  r.get('/v1/models/:name/metadata', { schema: { params: NameParams, querystring: VariantQuery }, preHandler: scoped }, async (req) => metadata(req.params.name, undefined, req.query.variant));
  r.get('/v1/models/:name/versions/:version/metadata', { schema: { params: VersionParams, querystring: VariantQuery }, preHandler: scoped }, async (req) =>
    metadata(req.params.name, req.params.version, req.query.variant),
  );
  r.get('/v1/models/:name', { schema: { params: NameParams, querystring: VariantQuery }, preHandler: scoped }, async (req) => status(req.params.name, undefined, req.query.variant));
  r.get('/v1/models/:name/versions/:version', { schema: { params: VersionParams, querystring: VariantQuery }, preHandler: scoped }, async (req) =>
    status(req.params.name, req.params.version, req.query.variant),
  );
};
