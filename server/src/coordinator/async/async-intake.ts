import { getCodec, type FitReport, type TaskPlan } from '@flotilla/protocol';
import { AppError, type ErrorCode } from '../../errors.js';
import type { NormScreen } from '../../fl/screening.js';
import { allFinite, inFloat32Range } from '../../fl/update-checks.js';

/**
 * One asynchronous report's content, checked completely before it touches the buffer: codec, size,
 * decoding and shape, finite values, metrics and the new weights within float32 range, screening
 * (the same checks and codes as a round's intake, docs/architecture.md "Life of a round", step 4).
 * Returns the decoded delta (owned by the caller) or throws AppError; nothing is changed on a
 * throw except the screen's verdict history, which only accepted norms enter.
 */
export interface IntakeChecks {
  plan: TaskPlan;
  modelLength: number;
  screen: NormScreen | null;
  /** Index where the delta alone would put the new weights out of float32 range, or -1. */
  outOfRange: (delta: Float32Array) => number;
}

export function checkedDelta(r: FitReport, c: IntakeChecks): Float32Array {
  const no = (code: ErrorCode, details?: unknown): never => {
    throw new AppError(code, details);
  };
  if (r.codec !== c.plan.codec) no('FL_ERR_REPORT_WRONG_CODEC', { expected: c.plan.codec, got: r.codec });
  if (r.delta.byteLength > c.plan.maxUpdateBytes) no('FL_ERR_REPORT_TOO_LARGE', { limit: c.plan.maxUpdateBytes, got: r.delta.byteLength });
  let delta: Float32Array;
  try {
    delta = getCodec(r.codec).decode(r.delta, c.modelLength);
  } catch (err) {
    throw err instanceof AppError ? err : new AppError('FL_ERR_CODEC_CORRUPT');
  }
  if (!allFinite(delta)) no('FL_ERR_REPORT_NON_FINITE', { round: r.round });
  for (const [k, v] of Object.entries(r.metrics)) if (!inFloat32Range(v)) no('FL_ERR_REPORT_OUT_OF_RANGE', { metric: k });
  const at = c.outOfRange(delta);
  if (at >= 0) no('FL_ERR_REPORT_OUT_OF_RANGE', { index: at });
  if (c.screen) {
    const d = c.screen.screen(delta);
    if (d.verdict === 'reject') no('FL_ERR_REPORT_REJECTED_NORM', { norm: d.norm, threshold: d.threshold });
  }
  return delta;
}
