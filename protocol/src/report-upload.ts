import * as z from 'zod';
import { CodecNameSchema } from './plan.js';

/**
 * The binary report upload channel (docs/protocol.md, "Report upload"): beside the socket.io
 * control channel, a device may send its fit report as one HTTP request whose body is the encoded
 * delta, streamed by the coordinator into the round's staging without a socket.io message.
 *
 * The coordinator offers it per device and round with the `fit:upload` event, sent right after
 * `fit:instruction` (a separate event so that protocol-2 devices that do not know it ignore it).
 * The device then sends `PUT <url>` with `Content-Type: application/octet-stream`, the encoded
 * delta as the body and the small report fields as JSON in the `x-flotilla-report` header; the
 * answer is the same ack `fit:report` gets (`{ ok: true }` with 200, or `{ ok: false, error }`
 * with the error's HTTP status). No `fit:ready` is needed: the coordinator reads the body only
 * once it holds an upload slot for the device.
 */
export const REPORT_META_HEADER = 'x-flotilla-report';

const Id = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/);
const RoundNo = z.number().int().min(1).max(2 ** 31);

/** Server -> device: where this device may upload its report for the round (single use). */
export const FitUploadSchema = z
  .object({
    taskId: Id,
    round: RoundNo,
    /** Path relative to the server URL, token included (opaque to the device): `/api/v1/devices/reports/<token>`. */
    url: z.string().min(1).max(1024),
  })
  .strict();
export type FitUpload = z.infer<typeof FitUploadSchema>;

/** The `x-flotilla-report` header's JSON: the report's fields other than the delta. */
export const ReportMetaSchema = z
  .object({
    numExamples: z.number().int().min(1).max(1e9),
    metrics: z.record(z.string().max(64), z.number().refine(Number.isFinite, 'must be finite')).refine((m) => Object.keys(m).length <= 32, 'too many metrics'),
    codec: CodecNameSchema,
  })
  .strict();
export type ReportMeta = z.infer<typeof ReportMetaSchema>;

/** The upload route's path prefix; the token follows it. */
export const REPORT_UPLOAD_PATH = '/api/v1/devices/reports/';
