/**
 * THE error registry of Flotilla. Every error that reaches a user (socket ack, REST body, CLI)
 * carries one of these codes. Server, SDK and simulator import it from here; nothing else
 * defines codes. docs/errors.md lists them and a test keeps the two in step.
 *
 * Naming: FL_ERR_<AREA>_<WHAT>. `status` is the HTTP status used when the error crosses HTTP.
 */
export const ERROR_REGISTRY = {
  // protocol / transport
  FL_ERR_PROTO_INVALID_MESSAGE: { status: 400, message: 'The message does not match its schema' },
  FL_ERR_PROTO_VERSION_MISMATCH: { status: 400, message: 'Client protocol version is not supported by this server' },
  FL_ERR_PROTO_NOT_AUTHENTICATED: { status: 401, message: 'Authenticate in the connection handshake before sending events' },
  FL_ERR_PROTO_UNKNOWN_EVENT: { status: 400, message: 'Unknown event' },
  FL_ERR_PROTO_RATE_LIMITED: { status: 429, message: 'Too many messages from this device' },
  FL_ERR_PROTO_MESSAGE_TOO_LARGE: { status: 413, message: 'The message exceeds the size allowed for this event' },
  FL_ERR_PROTO_UPLOAD_NOT_GRANTED: { status: 409, message: 'Send fit:ready and wait for its ok ack before fit:report' },
  // auth
  FL_ERR_AUTH_REQUIRED: { status: 401, message: 'A credential is required' },
  FL_ERR_AUTH_INVALID_TOKEN: { status: 401, message: 'The token is invalid, expired or revoked' },
  FL_ERR_AUTH_FORBIDDEN: { status: 403, message: 'The credential does not allow this action' },
  FL_ERR_AUTH_THROTTLED: { status: 429, message: 'Too many failed authentications from this address; retry later' },
  FL_ERR_AUTH_OUT_OF_SCOPE: { status: 403, message: 'The credential is scoped to other resources (another task, model or endpoint)' },
  FL_ERR_TOKEN_NOT_FOUND: { status: 404, message: 'No such token' },
  // clients (devices known to the coordinator)
  FL_ERR_CLIENT_NOT_FOUND: { status: 404, message: 'No such client' },
  FL_ERR_CLIENT_REVOKED: { status: 403, message: 'This device has been revoked' },
  FL_ERR_CLIENT_BOUND: { status: 403, message: 'This device id is bound to another credential' },
  FL_ERR_CLIENT_CAP_REACHED: { status: 403, message: 'This credential has enrolled as many device ids as it may (maxDevicesPerToken)' },
  // tasks and rounds
  FL_ERR_TASK_NOT_FOUND: { status: 404, message: 'No such task' },
  FL_ERR_TASK_EXISTS: { status: 409, message: 'A task with this name already exists' },
  FL_ERR_TASK_NOT_RUNNING: { status: 409, message: 'The task is not running' },
  FL_ERR_TASK_INVALID_STATE: { status: 409, message: 'The task cannot make this transition from its current state' },
  FL_ERR_TASK_INVALID_SPEC: { status: 400, message: 'The model spec or plan is invalid' },
  FL_ERR_ROUND_NOT_FOUND: { status: 404, message: 'No such round' },
  FL_ERR_ROUND_WRONG_ROUND: { status: 409, message: 'The report is for a round that is not the current one' },
  FL_ERR_ROUND_NOT_ACCEPTING: { status: 409, message: 'The round is not accepting reports' },
  FL_ERR_ROUND_NOT_SELECTED: { status: 403, message: 'This device was not selected for the round' },
  FL_ERR_ROUND_DUPLICATE_REPORT: { status: 409, message: 'This device already reported for the round' },
  FL_ERR_ROUND_LATE_REPORT: { status: 409, message: 'The report arrived after the round closed' },
  FL_ERR_ASYNC_UNKNOWN_VERSION: { status: 409, message: 'The report names a base version this asynchronous task has not published' },
  FL_ERR_ASYNC_STALE_REPORT: { status: 409, message: "The report's base version lags the model by more than the plan's maxStaleness steps" },
  FL_ERR_ASYNC_NOT_ADMITTED: { status: 403, message: 'This device holds no training slot of this asynchronous task for that base version' },
  FL_ERR_ASYNC_STRATEGY_UNSUPPORTED: { status: 400, message: 'This strategy or feature cannot aggregate asynchronous buffers' },
  FL_ERR_EVAL_NOT_REQUESTED: { status: 403, message: 'This device was not asked to evaluate this round, or already reported its evaluation' },
  // reports (update payloads)
  FL_ERR_REPORT_SHAPE_MISMATCH: { status: 400, message: 'The update does not match the model size' },
  FL_ERR_REPORT_NON_FINITE: { status: 400, message: 'The update contains NaN or Infinity' },
  FL_ERR_REPORT_OUT_OF_RANGE: { status: 400, message: 'The update or its metrics would leave float32 range (magnitude above 3.4028234663852886e38)' },
  FL_ERR_REPORT_TOO_LARGE: { status: 413, message: 'The update exceeds the size limit' },
  FL_ERR_REPORT_WRONG_CODEC: { status: 400, message: 'The update uses a codec other than the one the plan requires' },
  FL_ERR_REPORT_REJECTED_NORM: { status: 400, message: 'The update norm is an outlier and was rejected' },
  // secure aggregation (docs/secure-aggregation.md)
  FL_ERR_SECAGG_STRATEGY_REFUSED: { status: 400, message: 'Secure aggregation shows the coordinator only the sum of updates; this strategy or screening needs individual updates (median, trimmed mean, Krum, norm screening, server-side DP clipping)' },
  FL_ERR_SECAGG_CODEC_REFUSED: { status: 400, message: 'With secure aggregation the masked vector is the encoding: the plan codec must be f32 (use quantization.bits for fewer bits; int8 scales, f16 floats and topk indices do not add up under masking)' },
  FL_ERR_SECAGG_INVALID_PLAN: { status: 400, message: 'The secure aggregation settings do not fit the round (threshold, neighbours, quantization bits against the selection size)' },
  FL_ERR_SECAGG_PLAIN_REPORT: { status: 409, message: 'This task uses secure aggregation: send the masked input (secagg:masked), not fit:report' },
  FL_ERR_SECAGG_WRONG_PHASE: { status: 409, message: 'The secure aggregation message does not belong to the phase the round is in, or this device is not part of that phase' },
  FL_ERR_SECAGG_BAD_MESSAGE: { status: 400, message: 'The secure aggregation message has the wrong size or content for its phase' },
  FL_ERR_REPORT_TOKEN_INVALID: { status: 401, message: 'The report upload token is malformed, forged, or not for a round this coordinator is running' },
  FL_ERR_REPORT_TOKEN_USED: { status: 409, message: 'The report upload token was used already (one upload per token); send the report over the socket instead' },
  FL_ERR_REPORT_WRONG_NODE: { status: 421, message: 'The device is not connected to this coordinator node: upload the report to the node holding its socket.io connection, or send it over the socket' },
  FL_ERR_REPORT_TRUNCATED: { status: 400, message: 'The report upload ended before its declared length' },
  FL_ERR_REPORT_CONTROL_MISSING: { status: 400, message: "The task's strategy (SCAFFOLD) needs the device's control variate delta beside the model delta" },
  FL_ERR_REPORT_CONTROL_UNEXPECTED: { status: 400, message: "The report carries a control variate delta that the task's strategy does not use" },
  // codecs and tensors
  FL_ERR_CODEC_UNKNOWN: { status: 400, message: 'Unknown codec' },
  FL_ERR_CODEC_CORRUPT: { status: 400, message: 'Encoded tensor bytes are truncated or corrupt' },
  FL_ERR_TENSOR_BAD_MANIFEST: { status: 400, message: 'The weight manifest is inconsistent' },
  // registry
  FL_ERR_MODEL_NOT_FOUND: { status: 404, message: 'No such model' },
  FL_ERR_VERSION_NOT_FOUND: { status: 404, message: 'No such model version' },
  FL_ERR_VERSION_IMMUTABLE: { status: 409, message: 'Model versions are immutable' },
  FL_ERR_ALIAS_NOT_FOUND: { status: 404, message: 'No such alias' },
  FL_ERR_ALIAS_INVALID: { status: 400, message: 'Invalid alias name' },
  FL_ERR_ALIAS_NO_PREVIOUS: { status: 409, message: 'The alias has no earlier version to roll back to' },
  FL_ERR_ARTIFACT_NOT_FOUND: { status: 404, message: 'No such artifact' },
  FL_ERR_VARIANT_NOT_FOUND: { status: 404, message: 'No such variant' },
  FL_ERR_BLOB_CORRUPT: { status: 500, message: 'A stored blob failed its checksum and was not served' },
  // model import (uploaded TensorFlow.js LayersModels)
  FL_ERR_MODEL_IMPORT_TOPOLOGY: { status: 400, message: 'The uploaded model.json is missing or its topology cannot be built by TensorFlow.js' },
  FL_ERR_MODEL_IMPORT_WEIGHTS: { status: 400, message: 'The uploaded weights do not match the manifest (missing, truncated or extra bytes, wrong dtype, or not finite)' },
  FL_ERR_MODEL_IMPORT_ONNX: { status: 400, message: 'The uploaded ONNX model cannot be served (not a readable ModelProto, an unsupported opset or IR version, external data, or inputs and outputs without a dynamic batch dimension or of an unsupported type)' },
  FL_ERR_MODEL_FORMAT: { status: 409, message: 'The version is stored in another model format than this operation needs (e.g. model.json of an ONNX version, or distilling one)' },
  FL_ERR_MODEL_IMPORT_NOT_TRAINABLE: { status: 400, message: 'The model has no trainable weights (or the plan names layers it does not have)' },
  FL_ERR_UPLOAD_TOO_LARGE: { status: 413, message: 'The upload exceeds the server limit (--max-upload-bytes)' },
  FL_ERR_UPLOAD_MALFORMED: { status: 400, message: 'The upload body is not a well-formed tar archive of a model directory' },
  // device data (SDK and simulator)
  FL_ERR_DATA_BAD_SHAPE: { status: 400, message: 'The data has a shape the model does not take' },
  FL_ERR_DATA_BAD_LABELS: { status: 400, message: 'The labels do not fit the data or the loss (count, shape or values)' },
  FL_ERR_DATA_SET_UNAVAILABLE: { status: 404, message: 'No central data set of that name is known here, or the package that ships it is not installed' },
  // serving (inference, deployments)
  FL_ERR_SERVING_BAD_INPUT: { status: 400, message: 'The inference request does not fit the model (input names, shapes, datatypes or data)' },
  FL_ERR_SERVING_OVERLOADED: { status: 429, message: 'The model is overloaded: its request queue is full; retry later' },
  FL_ERR_SERVING_TIMEOUT: { status: 504, message: 'The inference request timed out before it was served' },
  FL_ERR_SERVING_UNAVAILABLE: { status: 503, message: 'The model version cannot be loaded for serving' },
  FL_ERR_SERVING_ONNX_RUNTIME_MISSING: { status: 503, message: 'ONNX models need the optional package onnxruntime-node, which is not installed on this server' },
  FL_ERR_SERVING_REFERENCE_WINDOW: { status: 409, message: 'Too few logged requests in the window to confirm it as the drift reference' },
  FL_ERR_DEPLOYMENT_NOT_FOUND: { status: 404, message: 'No such deployment' },
  FL_ERR_DEPLOYMENT_EXISTS: { status: 409, message: 'A deployment with this name already exists' },
  FL_ERR_DEPLOYMENT_INVALID: { status: 400, message: 'The deployment configuration is invalid' },
  FL_ERR_DEPLOYMENT_UNKNOWN_REQUEST: { status: 404, message: 'No request with this id awaits feedback on this deployment' },
  // store
  FL_ERR_STORE_UNAVAILABLE: { status: 503, message: 'The store is unreachable' },
  FL_ERR_STORE_CONFLICT: { status: 409, message: 'A concurrent write conflicted' },
  FL_ERR_STORE_FULL: { status: 503, message: 'The disk holding the data dir is full: writes are refused until space is freed' },
  FL_ERR_STORE_CORRUPT: { status: 500, message: 'The database failed its integrity check; restore it from a backup' },
  FL_ERR_STORE_NOT_WRITABLE: { status: 500, message: 'The data dir cannot be written' },
  // cluster (several coordinators on Redis)
  FL_ERR_CLUSTER_STALE_LEADER: { status: 409, message: 'A newer leader holds this task: the commit of a stale leader was refused' },
  FL_ERR_CLUSTER_UNSUPPORTED: { status: 400, message: 'This strategy or option is not supported in cluster mode' },
  FL_ERR_CLUSTER_UNAVAILABLE: { status: 503, message: 'The cluster coordination service (Redis) is unreachable' },
  // http
  FL_ERR_HTTP_VALIDATION: { status: 400, message: 'The request failed validation' },
  FL_ERR_HTTP_NOT_FOUND: { status: 404, message: 'No such route' },
  FL_ERR_HTTP_PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  FL_ERR_HTTP_UNSUPPORTED_MEDIA: { status: 415, message: 'Unsupported content type' },
  FL_ERR_HTTP_RATE_LIMITED: { status: 429, message: 'Too many requests' },
  FL_ERR_HTTP_BAD_REQUEST: { status: 400, message: 'The request is not the strict HTTP/1.1 the report upload receiver accepts (request line, header syntax, one Host and one Content-Length of digits)' },
  FL_ERR_HTTP_LENGTH_REQUIRED: { status: 411, message: 'Send the report upload body with exactly one Content-Length header and no Transfer-Encoding' },
  FL_ERR_HTTP_HEADERS_TOO_LARGE: { status: 431, message: 'The request header block exceeds its size limit' },
  FL_ERR_HTTP_TIMEOUT: { status: 408, message: 'The request head or body did not arrive in time' },
  FL_ERR_HTTP_PIPELINED: { status: 400, message: 'A request arrived before the answer to the previous one on this connection (no pipelining): the connection is closed' },
  // serving replicas and sidecars talking to their registry upstream (docs/deploy.md)
  FL_ERR_UPSTREAM_UNREACHABLE: { status: 503, message: 'The registry upstream cannot be reached; the last synced versions keep serving' },
  FL_ERR_UPSTREAM_CORRUPT: { status: 502, message: 'An artifact from the registry upstream failed its checksum and was not used' },
  FL_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'The registry upstream answered something this process cannot use' },
  // operator CLI
  FL_ERR_CLI_UNREACHABLE: { status: 503, message: 'The server cannot be reached' },
  // config and everything else
  FL_ERR_CONFIG_INVALID: { status: 500, message: 'Invalid configuration' },
  FL_ERR_INTERNAL: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_REGISTRY;

export const ERROR_CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[];

/** The wire form of an error, on sockets (inside an ack) and over HTTP (inside `{ error }`). */
export interface WireError {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(ERROR_REGISTRY, x);
}

/** The one error class. Thrown anywhere; mapped to a socket ack or HTTP body at the boundary. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, details?: unknown, message?: string) {
    super(message ?? ERROR_REGISTRY[code].message);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return ERROR_REGISTRY[this.code].status;
  }
  toWire(): WireError {
    const w: WireError = { code: this.code, message: this.message };
    if (this.details !== undefined) w.details = this.details;
    return w;
  }
}

/** Map anything thrown to a WireError; unknown errors become FL_ERR_INTERNAL with no internals leaked. */
export function toWireError(err: unknown): WireError {
  if (err instanceof AppError) return err.toWire();
  return { code: 'FL_ERR_INTERNAL', message: ERROR_REGISTRY.FL_ERR_INTERNAL.message };
}
