import * as z from 'zod';
import { ERROR_CODES, type WireError } from './errors.js';
import { ClientPlanSchema, CodecNameSchema, LossNameSchema, MetricNameSchema } from './plan.js';

/**
 * Every socket.io message, as a zod schema. Both sides validate every message with these before
 * acting on it (server: wrapped handlers; SDK: parse on receipt).
 */
const Id = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits, . _ : - only');
const RoundNo = z.number().int().min(1).max(2 ** 31);
const Finite = z.number().refine(Number.isFinite, 'must be finite');
const MetricsSchema = z.record(z.string().max(64), Finite).refine((m) => Object.keys(m).length <= 32, 'too many metrics');

/** Binary payloads: Buffer/Uint8Array in Node, ArrayBuffer in browsers; always handed on as Uint8Array. */
export const BytesSchema = z
  .custom<Uint8Array | ArrayBuffer>((v) => v instanceof Uint8Array || v instanceof ArrayBuffer, 'expected binary data')
  .transform((v) => (v instanceof Uint8Array ? v : new Uint8Array(v)));

// ---- connection handshake ----
/**
 * The socket.io handshake `auth` object (socket.io-client: `io(url, { auth })`; python-socketio:
 * `connect(url, auth=...)`). Checked by the server before the connection is accepted: a socket
 * whose handshake is refused never gets to send an event. See docs/api.md, "Device connection".
 */
export const HandshakeAuthSchema = z
  .object({
    protocolVersion: z.number().int(),
    token: z.string().min(1).max(512),
    taskId: Id,
    /** Stable per device; the server assigns one when absent. Bound to the token that first used it. */
    deviceId: Id.optional(),
    backend: z.string().max(64).optional(),
    sdkVersion: z.string().max(64).optional(),
    numExamples: z.number().int().min(0).optional(),
  })
  .strict();
export type HandshakeAuth = z.infer<typeof HandshakeAuthSchema>;

/** Limits a connected device must respect (bytes of one socket.io message, JSON and binary together). */
export const SessionLimitsSchema = z
  .object({
    /** Transport cap: a larger message closes the connection (derived from the largest update any plan may ask for). */
    maxMessageBytes: z.number().int().positive(),
    /** Any event but a granted fit:report. Larger ones are refused with FL_ERR_PROTO_MESSAGE_TOO_LARGE. */
    maxEventBytes: z.number().int().positive(),
    /** Slack above the `bytes` granted by fit:ready that a fit:report's JSON envelope may use. */
    reportEnvelopeBytes: z.number().int().positive(),
  })
  .strict();
export type SessionLimits = z.infer<typeof SessionLimitsSchema>;

/** Sent by the server once, right after it accepted the handshake, before any instruction. */
export const SessionSchema = z
  .object({
    deviceId: Id,
    sessionId: z.string().min(1).max(128),
    heartbeatIntervalMs: z.number().int().positive(),
    /** Sessions without any message for this long are dropped. */
    sessionTimeoutMs: z.number().int().positive(),
    modelName: z.string().min(1).max(128),
    limits: SessionLimitsSchema,
  })
  .strict();
export type SessionMessage = z.infer<typeof SessionSchema>;

// ---- client -> server ----
export const HeartbeatSchema = z.object({ t: z.number().optional() }).strict();

export const FitReportSchema = z
  .object({
    taskId: Id,
    round: RoundNo,
    numExamples: z.number().int().min(1).max(1e9),
    metrics: MetricsSchema,
    codec: CodecNameSchema,
    delta: BytesSchema,
  })
  .strict();
export type FitReport = z.infer<typeof FitReportSchema>;

/**
 * Sent after local training, before the report: the ack arrives when the coordinator grants an
 * upload slot (it bounds concurrent uploads so memory stays O(model) however many devices finish
 * at once). A report may follow only after an `ok` ack.
 */
export const FitReadySchema = z.object({ taskId: Id, round: RoundNo, bytes: z.number().int().min(0).max(2 ** 32) }).strict();
export type FitReady = z.infer<typeof FitReadySchema>;

export const FitFailureSchema = z.object({ taskId: Id, round: RoundNo, reason: z.string().max(1024) }).strict();
export type FitFailure = z.infer<typeof FitFailureSchema>;

export const EvalReportSchema = z
  .object({ taskId: Id, round: RoundNo, numExamples: z.number().int().min(1).max(1e9), metrics: MetricsSchema })
  .strict();
export type EvalReport = z.infer<typeof EvalReportSchema>;

// ---- server -> client ----
export const FitInstructionSchema = z
  .object({
    taskId: Id,
    round: RoundNo,
    modelName: z.string().min(1).max(128),
    modelVersion: z.number().int().min(1),
    /** Path (relative to the server URL) of the tfjs model.json of that version. */
    modelUrl: z.string().min(1).max(2048),
    /** Path of the flat float32 weights of that version. */
    weightsUrl: z.string().min(1).max(2048),
    plan: ClientPlanSchema,
    /** Epoch milliseconds after which reports are refused. */
    deadline: z.number(),
  })
  .strict();
export type FitInstruction = z.infer<typeof FitInstructionSchema>;

export const EvalInstructionSchema = z
  .object({
    taskId: Id,
    round: RoundNo,
    modelName: z.string().min(1).max(128),
    modelVersion: z.number().int().min(1),
    modelUrl: z.string().min(1).max(2048),
    weightsUrl: z.string().min(1).max(2048),
    batchSize: z.number().int().min(1),
    deadline: z.number(),
    /** The task's loss and metrics (absent from older servers: categoricalCrossentropy and accuracy). */
    loss: LossNameSchema.optional(),
    metrics: z.array(MetricNameSchema).max(8).optional(),
  })
  .strict();
export type EvalInstruction = z.infer<typeof EvalInstructionSchema>;

export const RoundCancelSchema = z.object({ taskId: Id, round: RoundNo, reason: z.string().max(256) }).strict();
export type RoundCancel = z.infer<typeof RoundCancelSchema>;

export const TaskStateSchema = z
  .object({ taskId: Id, state: z.enum(['created', 'running', 'paused', 'stopped', 'done', 'failed']), reason: z.string().max(256).optional() })
  .strict();
export type TaskStateMessage = z.infer<typeof TaskStateSchema>;

// ---- acks ----
export const WireErrorSchema = z.object({
  code: z.enum(ERROR_CODES as [string, ...string[]]),
  message: z.string(),
  details: z.unknown().optional(),
});

export type Ack<T = Record<string, never>> = ({ ok: true } & T) | { ok: false; error: WireError };

export const SimpleAckSchema = z.union([
  z.object({ ok: z.literal(true) }).passthrough(),
  z.object({ ok: z.literal(false), error: WireErrorSchema }),
]);
