import { AppError } from '../../errors.js';
import { UploadGate } from '../upload-gate.js';

/** A device admitted to train from `baseVersion`, published at model step `baseStep`. */
export interface AsyncJob {
  deviceId: string;
  baseVersion: number;
  baseStep: number;
  admittedAt: number;
  deadline: number;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The devices training for an asynchronous task right now (at most `concurrency`), and the upload
 * gate their reports pass through. A device holds at most one job; a job ends when its report is
 * accepted or refused as stale, when the device fails or leaves, or at its deadline (`onExpire`).
 * Contract: `lookup` answers the coded reason a device's report for `version` cannot be taken
 * (docs/async.md, "Reports"), in this order: unknown version, not admitted, too stale.
 */
export class AsyncJobs {
  private readonly jobs = new Map<string, AsyncJob>();
  readonly gate: UploadGate;

  constructor(
    uploadSlots: number,
    private readonly onExpire: (job: AsyncJob) => void,
  ) {
    this.gate = new UploadGate(uploadSlots, 60_000);
  }

  get size(): number {
    return this.jobs.size;
  }

  has(deviceId: string): boolean {
    return this.jobs.has(deviceId);
  }

  get(deviceId: string): AsyncJob | undefined {
    return this.jobs.get(deviceId);
  }

  all(): IterableIterator<AsyncJob> {
    return this.jobs.values();
  }

  admit(deviceId: string, baseVersion: number, baseStep: number, deadlineMs: number): AsyncJob {
    const now = Date.now();
    const job: AsyncJob = { deviceId, baseVersion, baseStep, admittedAt: now, deadline: now + deadlineMs, timer: setTimeout(() => this.expire(deviceId, job), deadlineMs) };
    job.timer.unref?.();
    this.jobs.set(deviceId, job);
    return job;
  }

  private expire(deviceId: string, job: AsyncJob): void {
    if (this.jobs.get(deviceId) !== job) return;
    this.end(deviceId);
    this.onExpire(job);
  }

  /** The device's job ends (its upload slot, if any, is given back). Returns the job, if there was one. */
  end(deviceId: string): AsyncJob | undefined {
    const job = this.jobs.get(deviceId);
    if (!job) return undefined;
    clearTimeout(job.timer);
    this.jobs.delete(deviceId);
    this.gate.release(deviceId);
    return job;
  }

  /**
   * The job a report naming `version` belongs to, with its staleness at `step`; throws the code
   * it gets otherwise. A report refused as too stale also ends its job (it can never become fresh).
   */
  lookup(deviceId: string, version: number, published: number, step: number, maxStaleness: number | undefined): { job: AsyncJob; staleness: number } {
    if (version > published) throw new AppError('FL_ERR_ASYNC_UNKNOWN_VERSION', { version, latest: published });
    const job = this.jobs.get(deviceId);
    if (!job || job.baseVersion !== version) throw new AppError('FL_ERR_ASYNC_NOT_ADMITTED', { version, ...(job ? { admittedOn: job.baseVersion } : {}) });
    const staleness = step - job.baseStep;
    if (maxStaleness !== undefined && staleness > maxStaleness) {
      this.end(deviceId);
      throw new AppError('FL_ERR_ASYNC_STALE_REPORT', { version, staleness, maxStaleness });
    }
    return { job, staleness };
  }

  /** Every job ends (pause, stop, shutdown); devices waiting for an upload slot get `reason`. */
  clear(reason: AppError): void {
    for (const j of this.jobs.values()) clearTimeout(j.timer);
    this.jobs.clear();
    this.gate.clear(reason);
  }
}
