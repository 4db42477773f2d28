import type { Readable } from 'node:stream';
import { ReportMetaSchema, type FitReport, type ReportMeta } from '@flotilla/protocol';
import { AppError, type ErrorCode } from '../errors.js';
import type { Coordinator } from './coordinator.js';
import { readClaims } from './report-tokens.js';
import { TaskRunner } from './task-runner.js';

/**
 * Where an upload's body comes from, one call per upload: calls `each` with every chunk until the
 * body ends (resolves), breaks off (rejects with a plain Error: truncated) or `each` throws (rejects
 * with that, and calls it no more). Implemented over an IncomingMessage (readableBody, the fastify
 * route) and by the dedicated receiver's connection (http/upload-connection.ts).
 */
export type BodySource = (each: (chunk: Uint8Array) => void) => Promise<void>;

/** One HTTP report upload as a receiver hands it over (http/report-upload-routes.ts, http/upload-connection.ts). */
export interface ReportUpload {
  token: string;
  /** The `x-flotilla-report` header (JSON of ReportMetaSchema). */
  meta: string | undefined;
  /** Content-Length when the request has one. */
  declared: number | undefined;
  /** The body, unread. */
  body: BodySource;
}

const F32_HEADER = 12;

/**
 * Receives one report sent over the upload channel (docs/protocol.md, "Report upload") and folds
 * it exactly as `fit:report` would: the token names device, task, round and base version
 * (report-tokens.ts); the device must be connected to this node (its socket session: a report is
 * folded by the node that holds the device, FL_ERR_REPORT_WRONG_NODE otherwise); the body is read
 * only once the device holds an upload slot, and is never larger than the plan's maxUpdateBytes
 * (checked against Content-Length before reading and again as bytes arrive). An f32 body streams
 * into a reused staging buffer (report-staging.ts) that the fold then reads in place; other codecs
 * are collected and decoded as on the socket path. Validation, dedupe (one report per device and
 * round, across the cluster), deadline, screening and folding are `TaskRunner.onReport`'s, so a
 * refused or truncated upload changes nothing in the round. Resolves when the report was folded;
 * throws AppError with the code the device gets.
 */
export async function receiveReport(coordinator: Coordinator, up: ReportUpload): Promise<void> {
  const c = readClaims(up.token);
  const meta = parseMeta(up.meta);
  const runner = coordinator.maybeRunner(c.t);
  if (!(runner instanceof TaskRunner)) throw new AppError('FL_ERR_REPORT_TOKEN_INVALID', { why: 'no round-based task of that name here' });
  const s = coordinator.sessions.get(c.d);
  if (!s || !s.socket.connected || s.taskId !== c.t) throw new AppError('FL_ERR_REPORT_WRONG_NODE', { node: coordinator.cluster?.nodeId ?? 'local' });
  const a = await runner.openUpload(up.token, c, up.declared ?? 0);
  let staged: Uint8Array<ArrayBuffer> | null = null;
  let reached = false;
  try {
    const limit = a.plan.maxUpdateBytes;
    if (up.declared !== undefined && up.declared > limit) throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit, got: up.declared });
    const exact = F32_HEADER + 4 * a.modelLength;
    let delta: Uint8Array;
    if (meta.codec === 'f32' && exact <= limit) {
      staged = a.staging.take(exact);
      delta = await readInto(up.body, staged, limit);
      // Strategies that keep every update (median, trimmed mean, Krum) get their own copy; the weighted-sum family folds at once.
      if (a.aggregator.exportPartial === undefined) delta = delta.slice();
    } else {
      delta = await readAll(up.body, limit);
    }
    const report: FitReport = { taskId: c.t, round: c.r, numExamples: meta.numExamples, metrics: meta.metrics, codec: meta.codec, delta };
    reached = true;
    await runner.onReport(c.d, report);
    coordinator.stats.reportsAccepted++;
    coordinator.stats.reportsUploaded++;
    void coordinator.countReport(c.d, true);
  } catch (err) {
    if (!reached) a.gate.release(c.d);
    void coordinator.countReport(c.d, false);
    throw err instanceof AppError || reached ? err : new AppError('FL_ERR_REPORT_TRUNCATED', { why: String(err).slice(0, 200) });
  } finally {
    if (staged) a.staging.give(staged);
  }
}

function parseMeta(raw: string | undefined): ReportMeta {
  let json: unknown;
  try {
    json = JSON.parse(raw ?? '');
  } catch {
    throw new AppError('FL_ERR_PROTO_INVALID_MESSAGE', { header: 'x-flotilla-report', why: 'missing or not JSON' });
  }
  const p = ReportMetaSchema.safeParse(json);
  if (!p.success) throw new AppError('FL_ERR_PROTO_INVALID_MESSAGE', { header: 'x-flotilla-report', issues: p.error.issues.slice(0, 5) });
  return p.data;
}

/**
 * A Readable body (an IncomingMessage) as a BodySource; when `each` throws it stops listening (the
 * rest of the body is drained by the HTTP server after the answer). Plain 'data' listeners: no
 * async iterator and no promise per chunk.
 */
export const readableBody = (body: Readable): BodySource => (each) =>
  new Promise((resolve, reject) => {
    // The client may have gone while the upload waited for its slot.
    if (body.destroyed) return reject(new Error('connection closed before the body was read'));
    const done = (err?: unknown) => {
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onData = (chunk: Uint8Array) => {
      try {
        each(chunk);
      } catch (err) {
        done(err);
      }
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    const onClose = () => done(new Error('connection closed before the body ended'));
    body.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });

/**
 * Copies the body into `buf` (its exact expected size); the bytes received, a view of `buf`
 * (shorter when the body was). A longer body is read on (not kept) so that it gets the code the
 * socket path gives it: FL_ERR_REPORT_TOO_LARGE past `limit`, else FL_ERR_CODEC_CORRUPT.
 */
async function readInto(body: BodySource, buf: Uint8Array, limit: number): Promise<Uint8Array> {
  let n = 0;
  await body((chunk) => {
    if (n + chunk.length > limit) throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit, got: n + chunk.length });
    if (n + chunk.length <= buf.byteLength) buf.set(chunk, n);
    n += chunk.length;
  });
  if (n > buf.byteLength) throw new AppError('FL_ERR_CODEC_CORRUPT', { expectedBytes: buf.byteLength, got: n });
  return n === buf.byteLength ? buf : buf.subarray(0, n);
}

async function readAll(body: BodySource, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  await body((chunk) => {
    n += chunk.length;
    if (n > limit) throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit, got: n });
    chunks.push(chunk);
  });
  return Buffer.concat(chunks, n);
}

/** Rejection bookkeeping shared with the socket gateway: the count per code. */
export function countRejection(coordinator: Coordinator, code: ErrorCode): void {
  coordinator.stats.rejected[code] = (coordinator.stats.rejected[code] ?? 0) + 1;
}
