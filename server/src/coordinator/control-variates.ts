import { getCodec, readHeader, type CodecName, type FitReport, type TaskPlan } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { Strategy } from '../fl/strategy.js';
import { allFinite } from '../fl/update-checks.js';

/**
 * Control variates on the wire (SCAFFOLD; docs/protocol.md, "Control variates"). Downstream, the
 * server variate c travels inside `fit:instruction` as `control`, encoded once per round with the
 * plan's codec, except that a top-k plan sends it as f16 (a sparse c would steer every device with
 * a few coordinates); the bytes carry the codec header, so devices decode whatever they get.
 * Upstream, the device's control delta travels as `fit:report.control` in the plan's codec.
 */
export function serverControlCodec(plan: Pick<TaskPlan, 'codec'>): CodecName {
  return plan.codec === 'topk' ? 'f16' : plan.codec;
}

/** The encoded server control variate for this round's instructions, or undefined when the strategy has none. */
export function encodeServerControl(strategy: Strategy, plan: TaskPlan, modelLength: number): Uint8Array | undefined {
  const c = strategy.serverControl?.(modelLength);
  if (!c) return undefined;
  return getCodec(serverControlCodec(plan)).encode(c);
}

/** Bytes a report uploads: the model delta plus the control delta; what fit:ready announces and maxUpdateBytes bounds. */
export function reportBytes(r: Pick<FitReport, 'delta' | 'control'>): number {
  return r.delta.byteLength + (r.control?.byteLength ?? 0);
}

/**
 * The report's decoded control delta, checked: present exactly when the round's aggregator requires
 * one, in the report's codec, of the model's length, finite. Throws AppError with the rejection code.
 */
export function decodeReportControl(r: FitReport, required: boolean, modelLength: number): Float32Array | undefined {
  if (!r.control) {
    if (required) throw new AppError('FL_ERR_REPORT_CONTROL_MISSING', { round: r.round });
    return undefined;
  }
  if (!required) throw new AppError('FL_ERR_REPORT_CONTROL_UNEXPECTED', { round: r.round });
  const codec = readHeader(r.control).codec;
  if (codec !== r.codec) throw new AppError('FL_ERR_REPORT_WRONG_CODEC', { expected: r.codec, got: codec, part: 'control' });
  const control = getCodec(r.codec).decode(r.control, modelLength);
  if (!allFinite(control)) throw new AppError('FL_ERR_REPORT_NON_FINITE', { round: r.round, part: 'control' });
  return control;
}
