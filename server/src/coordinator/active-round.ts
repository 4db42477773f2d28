import type { FitReport, TaskPlan } from '@flotilla/protocol';
import { f32View, getCodec } from '@flotilla/protocol';
import { AppError, type ErrorCode } from '../errors.js';
import type { FitAggregator, FitFailure } from '../fl/strategy.js';
import { allFinite, inFloat32Range, withinMagnitude } from '../fl/update-checks.js';
import { boundBits } from '../fl/fold-kernel.js';
import { assertTransition, type RoundState } from '../fl/round-state.js';
import { UploadGate } from './upload-gate.js';
import type { NormScreen } from '../fl/screening.js';
import type { RoundRecord } from '../store/records.js';
import type { SecAggRound } from './secagg/secagg-round.js';
import { decodeReportControl, reportBytes } from './control-variates.js';
import type { ReportTokens } from './report-tokens.js';
import { StagingPool } from './report-staging.js';

/**
 * Book-keeping of the one round in flight for a task: who was selected, who reported, who
 * dropped, and the strategy's running aggregate. `accept` validates a report completely before
 * anything is folded in, so a rejected report leaves the aggregate bit-for-bit unchanged.
 */
export class ActiveRound {
  readonly selected: Set<string>;
  readonly reported = new Set<string>();
  readonly dropped = new Set<string>();
  /** Selected devices that lost their connection at some point of this round. */
  readonly disconnected = new Set<string>();
  readonly failures: FitFailure[] = [];
  timer: ReturnType<typeof setTimeout> | null = null;
  readonly gate: UploadGate;
  /** Secure aggregation of this round, when the plan asks for it (coordinator/secagg/). */
  secagg: SecAggRound | null = null;
  /** The round's upload tokens when it takes reports over HTTP (coordinator/report-upload.ts); null: socket only. */
  uploads: ReportTokens | null = null;
  /** Receive buffers of this round's f32 uploads: at most one per upload slot in use or idle, so O(slots x update), freed with the round. */
  readonly staging: StagingPool;
  /** The range headroom as float32 bits, for the one-pass check-and-fold (0: none). */
  private readonly bound: number;

  constructor(
    readonly record: RoundRecord,
    readonly aggregator: FitAggregator,
    readonly modelLength: number,
    readonly plan: TaskPlan,
    uploadSlots: number,
    private readonly screen: NormScreen | null = null,
    /**
     * `first`: index where a delta taken alone would put the new weights out of float32 range, or
     * -1 (see Strategy.previewOutOfRange); `headroom`: a delta within [-headroom, headroom] passes
     * `first` (Strategy.previewHeadroom; 0: none known).
     */
    private readonly range: { first(delta: Float32Array): number; headroom: number } | null = null,
  ) {
    this.selected = new Set(record.selected);
    this.gate = new UploadGate(uploadSlots, 60_000);
    this.staging = new StagingPool(uploadSlots);
    this.bound = boundBits(range?.headroom ?? 0);
  }

  /**
   * Checks a device may upload now (training, selected, not yet reported, announced size within
   * the limit); the same codes as a report would get, before any bytes are sent.
   */
  admit(clientId: string, bytes: number): void {
    if (this.record.state !== 'training') throw new AppError('FL_ERR_ROUND_LATE_REPORT', { round: this.round, state: this.record.state });
    if (!this.selected.has(clientId)) throw new AppError('FL_ERR_ROUND_NOT_SELECTED', { round: this.round });
    if (this.reported.has(clientId)) throw new AppError('FL_ERR_ROUND_DUPLICATE_REPORT', { round: this.round });
    if (bytes > this.plan.maxUpdateBytes) throw new AppError('FL_ERR_REPORT_TOO_LARGE', { limit: this.plan.maxUpdateBytes, got: bytes });
  }

  get round(): number {
    return this.record.round;
  }

  get state(): RoundState {
    return this.record.state;
  }

  transition(to: RoundState): void {
    assertTransition(this.record.state, to);
    this.record.state = to;
  }

  reject(clientId: string, code: ErrorCode, details?: unknown): never {
    this.record.rejected.push({ clientId, code, at: Date.now() });
    throw new AppError(code, details);
  }

  /**
   * Validate and fold one report; `granted`: the device holds an upload slot (its fit:ready was
   * answered ok). Throws AppError (and records the rejection) on any problem.
   */
  accept(clientId: string, r: FitReport, granted: boolean): void {
    if (this.record.state !== 'training') this.reject(clientId, 'FL_ERR_ROUND_LATE_REPORT', { round: r.round, state: this.record.state });
    if (!this.selected.has(clientId)) this.reject(clientId, 'FL_ERR_ROUND_NOT_SELECTED', { round: r.round });
    if (this.reported.has(clientId)) this.reject(clientId, 'FL_ERR_ROUND_DUPLICATE_REPORT', { round: r.round });
    if (!granted) this.reject(clientId, 'FL_ERR_PROTO_UPLOAD_NOT_GRANTED', { round: r.round });
    if (r.codec !== this.plan.codec) this.reject(clientId, 'FL_ERR_REPORT_WRONG_CODEC', { expected: this.plan.codec, got: r.codec });
    if (reportBytes(r) > this.plan.maxUpdateBytes) {
      this.reject(clientId, 'FL_ERR_REPORT_TOO_LARGE', { limit: this.plan.maxUpdateBytes, got: reportBytes(r) });
    }
    let delta: Float32Array;
    let control: Float32Array | undefined;
    try {
      // f32 (the common case) is read in place: the frame is this report's alone and read once.
      delta = r.codec === 'f32' ? f32View(r.delta, this.modelLength) : getCodec(r.codec).decode(r.delta, this.modelLength);
      control = decodeReportControl(r, this.aggregator.requiresControl === true, this.modelLength);
    } catch (err) {
      const code: ErrorCode = err instanceof AppError ? err.code : 'FL_ERR_CODEC_CORRUPT';
      this.reject(clientId, code, err instanceof AppError ? err.details : undefined);
    }
    // The plan's cap on one report's weight: a larger claim is clamped, not refused (docs/strategies.md).
    const numExamples = Math.min(r.numExamples, this.plan.maxExamplesPerReport ?? r.numExamples);
    const result = { clientId, numExamples, delta, metrics: r.metrics };
    // Values must stay within float32 where they end up: metrics are averaged in float64 and
    // stored; the delta is folded into a sum that becomes float32 weights. A delta is refused when
    // it alone would push the new model out of range (Strategy.previewOutOfRange): a running sum cannot give a
    // report back afterwards (subtracting 3e38 from a float64 sum wipes out the other reports'
    // digits), so the offending report is kept out before it is folded, not after the commit fails.
    const badMetric = Object.keys(r.metrics).find((k) => !inFloat32Range(r.metrics[k]));
    // One pass for almost every report: the aggregator checks each value against the headroom
    // while it folds, and folds nothing if one fails (FitAggregator.addWithin). A report that
    // fails it, or that screening must see first, takes the checks one by one, so every code is
    // the same as if each check ran on its own.
    const onePass = !this.screen && !control && badMetric === undefined && this.bound > 0 && this.aggregator.addWithin !== undefined;
    if (onePass && this.aggregator.addWithin!(result, this.bound)) return this.markReported(clientId, reportBytes(r));
    const quick = !onePass && withinMagnitude(delta, this.range?.headroom ?? 0);
    if (!quick && !allFinite(delta)) this.reject(clientId, 'FL_ERR_REPORT_NON_FINITE', { round: r.round });
    if (badMetric !== undefined) this.reject(clientId, 'FL_ERR_REPORT_OUT_OF_RANGE', { metric: badMetric });
    const at = quick || !this.range ? -1 : this.range.first(delta);
    if (at >= 0) this.reject(clientId, 'FL_ERR_REPORT_OUT_OF_RANGE', { index: at });
    if (this.screen) {
      const d = this.screen.screen(delta);
      if (d.verdict === 'reject') this.reject(clientId, 'FL_ERR_REPORT_REJECTED_NORM', { norm: d.norm, threshold: d.threshold });
    }
    this.aggregator.add(control ? { ...result, control } : result);
    this.markReported(clientId, reportBytes(r));
  }

  private markReported(clientId: string, bytes: number): void {
    if (this.dropped.delete(clientId)) {
      // It lost its connection mid-round and came back in time: a participant, not a dropout.
      this.record.dropped = this.record.dropped.filter((id) => id !== clientId);
      const i = this.failures.findIndex((f) => f.clientId === clientId);
      if (i >= 0) this.failures.splice(i, 1);
    }
    this.reported.add(clientId);
    this.record.reported.push(clientId);
    this.record.bytesUp += bytes;
  }

  /**
   * Cluster leader: another node validated and folded this device's report into its shard; count
   * it here (the sum arrives with that node's partial). Returns false when it was not countable.
   * `closing`: the device was listed in a partial merged at close (its notice had not arrived).
   */
  countRemote(clientId: string, bytes: number, closing = false): boolean {
    if ((!closing && this.record.state !== 'training') || !this.selected.has(clientId) || this.reported.has(clientId)) return false;
    this.markReported(clientId, bytes);
    return true;
  }

  /** A selected device left or failed before reporting. */
  drop(clientId: string, reason: string): boolean {
    if (!this.selected.has(clientId) || this.reported.has(clientId) || this.dropped.has(clientId)) return false;
    this.dropped.add(clientId);
    this.record.dropped.push(clientId);
    this.failures.push({ clientId, reason });
    return true;
  }

  /** Every selected device has reported or dropped. */
  get settled(): boolean {
    return this.reported.size + this.dropped.size >= this.selected.size;
  }
}
