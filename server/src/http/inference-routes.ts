import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, ERROR_REGISTRY, type ErrorCode } from '../errors.js';
import { SERVED_VARIANTS } from '../registry/variants.js';
import { HEADER_LENGTH, binaryInputs, binaryResponse, splitBinaryBody, wantsBinaryOutput } from '../serving/binary-tensors.js';
import { checkOipOutputs, parseOipInputs, type OipTensor } from '../serving/infer-input.js';
import { parseInferJson } from '../serving/infer-json.js';
import { unpackRows } from '../serving/model-io.js';
import type { InferRequest, InferResult, Serving } from '../serving/serving.js';
import { requireRole, type AuthConfig } from './auth.js';
import { HEADER_SAFE, RequestId } from './ids.js';
import { inferValidatorCompiler } from './infer-validation.js';
import { endpointScope } from './scope.js';

export interface InferenceRoutesOptions {
  serving: Serving;
  auth: AuthConfig;
  /** Inference (and feedback) without a token. Health probes are always public. */
  publicInference?: boolean;
  /** Server version for `GET /v2`. */
  version?: string;
}

/**
 * Error mapping of the inference protocols (OIP and TF Serving answer `{ "error": "<message>" }`):
 * the same registry codes and statuses as everywhere, in that form plus `code` and `details`.
 * Schema failures and unparsable bodies are FL_ERR_SERVING_BAD_INPUT.
 */
export function inferenceErrorHandler(err: FastifyError | AppError | Error, req: FastifyRequest, reply: FastifyReply): void {
  let code: ErrorCode;
  let details: unknown;
  const fe = err as FastifyError & { validation?: unknown };
  if (err instanceof AppError) {
    code = err.code;
    details = err.details;
  } else if (fe.validation) {
    code = 'FL_ERR_SERVING_BAD_INPUT';
    details = { issues: fe.validation };
  } else if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') code = 'FL_ERR_HTTP_PAYLOAD_TOO_LARGE';
  else if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') code = 'FL_ERR_HTTP_UNSUPPORTED_MEDIA';
  else if (fe.statusCode === 429) code = 'FL_ERR_HTTP_RATE_LIMITED';
  else if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    code = 'FL_ERR_SERVING_BAD_INPUT';
    details = { why: fe.message };
  } else {
    req.log.error({ err }, 'unhandled inference error');
    code = 'FL_ERR_INTERNAL';
  }
  // Credential failures answer as on every other route (`{ error: { code, message } }`): one
  // auth contract for the whole server, whatever protocol the route speaks.
  if (code.startsWith('FL_ERR_AUTH_') || code === 'FL_ERR_HTTP_RATE_LIMITED') {
    void reply.status(ERROR_REGISTRY[code].status).send({ error: { code, message: ERROR_REGISTRY[code].message, ...(details !== undefined ? { details } : {}) } });
    return;
  }
  const why = (details as { why?: unknown } | undefined)?.why;
  const message = err instanceof AppError ? err.message : ERROR_REGISTRY[code].message;
  void reply
    .status(ERROR_REGISTRY[code].status)
    .send({ error: typeof why === 'string' ? `${message}: ${why}` : message, code, ...(details !== undefined ? { details } : {}) });
}

/**
 * JSON bodies of the inference routes: the fast path of infer-json.ts, else (null) fastify's own
 * JSON parser on the same text, so that every error keeps that parser's code. Bodies are still
 * validated by the routes' schemas either way. Registered in each inference plugin's context.
 */
export function useInferJsonParser(app: FastifyInstance): void {
  const general = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const fast = parseInferJson(body as Buffer);
    if (fast !== null) done(null, fast);
    else general(req, (body as Buffer).toString('utf8'), done);
  });
}

/** The request id: the body's `id` (validated header-safe), else a header-safe `x-request-id`, else a new UUID. */
export function requestIdOf(req: FastifyRequest, bodyId?: string): string {
  const h = req.headers['x-request-id'];
  return bodyId ?? (typeof h === 'string' && HEADER_SAFE.test(h) ? h : randomUUID());
}

export function routingKeyOf(req: FastifyRequest, fromBody?: unknown): string | undefined {
  const h = req.headers['x-routing-key'];
  if (typeof h === 'string' && h.length > 0) return h;
  return typeof fromBody === 'string' ? fromBody : undefined;
}

/** Headers naming what served the request. */
export function servedHeaders(reply: FastifyReply, res: InferResult): void {
  reply.header('x-model-name', res.model).header('x-model-version', String(res.version)).header('x-request-id', res.requestId);
  if (res.variant !== 'float32') reply.header('x-model-variant', res.variant);
  if (res.deployment) reply.header('x-deployment', res.deployment);
}

/**
 * The `parse` of an OIP inference request. A returned closure, not one written as a named
 * property per request: the TypeScript loader the benchmarks run under (tsx) names every named
 * closure with a defineProperty call each time one is made.
 */
function oipParser(inputs: OipTensor[], outputs: Array<{ name: string }> | undefined): InferRequest['parse'] {
  return (io, maxRows) => {
    checkOipOutputs(outputs, io);
    return parseOipInputs(inputs, io, maxRows);
  };
}

/** Request decorator holding a binary body's tensor bytes (inferenceRoutes). */
const BINARY_TAIL = 'oipBinaryTail';
type WithTail = FastifyRequest & { [BINARY_TAIL]?: Buffer | null };

/** How long a readiness probe waits for loads in progress before answering not ready. */
const READY_WAIT_MS = 2000;

/** True when `p` resolves within `ms`; false when it rejects or takes longer. */
async function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

const Name = z.string().min(1).max(128);
const Ref = z.string().min(1).max(64);
const ModelParams = z.object({ name: Name }).strict();
const VersionParams = z.object({ name: Name, version: Ref }).strict();
/** `?variant=` of the inference, metadata and readiness routes (OIP and TF Serving): which weights of the version answer. */
export const VariantQuery = z.object({ variant: z.enum(['float32', ...SERVED_VARIANTS]).optional() }).strict();
export type VariantName = z.infer<typeof VariantQuery>['variant'];
const Params = z.record(z.string(), z.unknown());
/** The OIP inference body (exported for infer-validation's test: its fast path must accept only what this accepts). */
export const InferBody = z.object({
  id: RequestId.optional(),
  parameters: Params.optional(),
  inputs: z
    .array(
      z.object({
        name: z.string().min(1).max(256),
        shape: z.array(z.number().int().min(0)).min(1).max(8),
        datatype: z.string().min(1).max(16),
        parameters: Params.optional(),
        data: z.unknown().optional(),
      }),
    )
    .min(1)
    .max(16),
  outputs: z.array(z.object({ name: z.string().min(1).max(256), parameters: Params.optional() })).max(16).optional(),
});

/**
 * Open Inference Protocol (KServe V2) REST. `{name}` is a deployment (its routing decides the
 * version) or a model (its `latest`); `/versions/{version}` (a number or an alias) bypasses
 * routing. Every answer names the serving version in `model_version` and `x-model-version`.
 */
export const inferenceRoutes: FastifyPluginAsync<InferenceRoutesOptions> = async (app, opts) => {
  app.setErrorHandler(inferenceErrorHandler);
  useInferJsonParser(app);
  const r = app.withTypeProvider<ZodTypeProvider>();
  const serving = opts.serving;
  // Inference needs an inference (or admin) token unless publicInference; scoped tokens call only their endpoints.
  const callers = opts.publicInference ? [] : [requireRole(opts.auth, ['inference'])];
  const scoped = [...callers, endpointScope()];

  // Binary tensor extension: the body is the JSON header then raw tensor bytes; the header goes
  // on to schema validation as the body, the bytes wait on the request for the handler (a
  // request decorator, not a WeakMap: per-request weak entries cost the garbage collector).
  app.decorateRequest(BINARY_TAIL, null);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      const { header, tail } = splitBinaryBody(body as Buffer, req.headers[HEADER_LENGTH]);
      (req as WithTail)[BINARY_TAIL] = tail;
      done(null, header);
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  // Probes are public (PUBLIC_ROUTES in auth.ts): orchestrators call them without credentials.
  r.get('/v2/health/live', async () => ({ live: true }));
  r.get('/v2/health/ready', async (_req, reply) => {
    const ready = await settles(serving.whenReady(), READY_WAIT_MS);
    return reply.status(ready ? 200 : 503).send({ ready });
  });
  r.get('/v2', { preHandler: callers }, async () => ({ name: 'flotilla', version: opts.version ?? '0.1.0', extensions: ['binary_tensor_data'] }));

  const metadata = async (name: string, ref: string | undefined, variant: VariantName | undefined) => {
    const targets = await serving.endpointVersions(name, { ref, variant });
    const { model, version } = targets[0];
    const served = await serving.cache.get(model, version, targets[0].variant);
    const io = served.io;
    return {
      name,
      // Every version that may be requested explicitly (newest first); `routed` is what routing picks now.
      versions: ref === undefined ? (await serving.versionsOf(model)).map(String) : [String(version)],
      platform: io.platform,
      inputs: io.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [-1, ...t.shape] })),
      // Outputs are answered as FP32 whatever the model computes them in (model-io.ts).
      outputs: io.outputs.map((t) => ({ name: t.name, datatype: 'FP32', shape: [-1, ...t.shape] })),
      parameters: {
        model,
        ...(serving.hasDeployment(name) ? { deployment: name } : {}),
        ...(ref === undefined ? { routed: [...new Set(targets.map((t) => String(t.version)))] } : {}),
        // The variant described (`?variant=`, or a deployment's first target's), when not the version's own weights.
        ...(served.variant !== 'float32' ? { variant: served.variant } : {}),
      },
    };
  };

  r.get('/v2/models/:name', { schema: { params: ModelParams, querystring: VariantQuery }, preHandler: scoped }, async (req) => metadata(req.params.name, undefined, req.query.variant));
  r.get('/v2/models/:name/versions/:version', { schema: { params: VersionParams, querystring: VariantQuery }, preHandler: scoped }, async (req) =>
    metadata(req.params.name, req.params.version, req.query.variant),
  );

  const readiness = async (reply: FastifyReply, name: string, ref: string | undefined, variant: VariantName | undefined) => {
    const targets = await serving.endpointVersions(name, { ref, variant });
    // A probe of a version not loaded yet starts loading it and waits a little for the load.
    const loads = targets.filter((t) => !t.loaded).map((t) => serving.cache.get(t.model, t.version, t.variant));
    const ready = loads.length === 0 || (await settles(Promise.all(loads), READY_WAIT_MS));
    return reply.status(ready ? 200 : 503).send({ name, ready });
  };
  r.get('/v2/models/:name/ready', { schema: { params: ModelParams, querystring: VariantQuery }, preHandler: scoped }, async (req, reply) => readiness(reply, req.params.name, undefined, req.query.variant));
  r.get('/v2/models/:name/versions/:version/ready', { schema: { params: VersionParams, querystring: VariantQuery }, preHandler: scoped }, async (req, reply) =>
    readiness(reply, req.params.name, req.params.version, req.query.variant),
  );

  const infer = async (req: FastifyRequest, reply: FastifyReply, name: string, body: z.infer<typeof InferBody>, ref?: string, variant?: string) => {
    const id = requestIdOf(req, body.id);
    const tail = (req as WithTail)[BINARY_TAIL];
    // A binary body's header may be shared with other requests (binary-tensors.ts): read, never changed.
    const inputs = tail ? binaryInputs(body.inputs, tail) : body.inputs;
    if (!tail && inputs.some((t) => t.parameters?.binary_data_size !== undefined)) {
      throw new AppError('FL_ERR_SERVING_BAD_INPUT', { why: `binary_data_size needs an application/octet-stream body with ${HEADER_LENGTH}` });
    }
    const res = await serving.infer({
      endpoint: name,
      ref,
      variant: variant ?? (typeof body.parameters?.variant === 'string' ? body.parameters.variant : undefined),
      requestId: id,
      routingKey: routingKeyOf(req, body.parameters?.routing_key),
      parse: oipParser(inputs, body.outputs),
    });
    servedHeaders(reply, res);
    const io = res.io;
    const parameters: Record<string, string> = res.deployment ? { model: res.model, variant: res.variant, deployment: res.deployment } : { model: res.model, variant: res.variant };
    // The outputs the request names (all when it names none), each in the model's order.
    const asked = body.outputs?.length ? io.outputs.filter((t) => body.outputs!.some((o) => o.name === t.name)) : io.outputs;
    const blocks = unpackRows(res.output, io.outputs, io.outWidth, res.rows);
    const data = new Array<Float32Array>(asked.length);
    const shapes = new Array<number[]>(asked.length);
    for (let i = 0; i < asked.length; i++) {
      data[i] = blocks[io.outputs.indexOf(asked[i])];
      shapes[i] = [res.rows, ...asked[i].shape];
    }
    const version = String(res.version);
    if (wantsBinaryOutput(body.parameters, body.outputs)) {
      const bin = binaryResponse({ model_name: name, model_version: version, id, parameters }, asked.map((t, i) => ({ name: t.name, shape: shapes[i] })), data);
      return reply.type('application/octet-stream').header(HEADER_LENGTH, String(bin.headerLength)).send(bin.body);
    }
    const outputs = asked.map((t, i) => ({ name: t.name, datatype: 'FP32', shape: shapes[i], data: Array.from(data[i]) }));
    return { model_name: name, model_version: version, id, parameters, outputs };
  };

  // Bodies, parameters and queries are checked by infer-validation.ts's fast path, else by zod.
  r.post('/v2/models/:name/infer', { schema: { params: ModelParams, querystring: VariantQuery, body: InferBody }, validatorCompiler: inferValidatorCompiler, preHandler: scoped }, async (req, reply) =>
    infer(req, reply, req.params.name, req.body, undefined, req.query.variant),
  );
  r.post(
    '/v2/models/:name/versions/:version/infer',
    { schema: { params: VersionParams, querystring: VariantQuery, body: InferBody }, validatorCompiler: inferValidatorCompiler, preHandler: scoped },
    async (req, reply) => infer(req, reply, req.params.name, req.body, req.params.version, req.query.variant),
  );
};

