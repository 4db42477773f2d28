import type { SecureAggregation } from '@flotilla/protocol';
import type { SecAggPhase, SecAggRoundView } from '../../store/records.js';

export type { SecAggPhase, SecAggRoundView };

/** Builds a SecAggRoundView as the phases go (secagg-round.ts). */
export class SecAggView {
  readonly record: SecAggRoundView;

  constructor(cfg: SecureAggregation) {
    this.record = { protocol: cfg.protocol, threshold: cfg.threshold, degree: null, phases: [], dropped: {}, outcome: 'pending', bytesUp: 0, bytesDown: 0 };
  }

  set degree(d: number) {
    this.record.degree = d;
  }
  get bytesUp(): number {
    return this.record.bytesUp;
  }
  set bytesUp(b: number) {
    this.record.bytesUp = b;
  }
  get bytesDown(): number {
    return this.record.bytesDown;
  }
  set bytesDown(b: number) {
    this.record.bytesDown = b;
  }
  set unmaskMs(ms: number) {
    this.record.unmaskMs = Math.round(ms * 1000) / 1000;
  }

  enter(phase: SecAggPhase, devices: number): void {
    const last = this.record.phases[this.record.phases.length - 1];
    const now = Date.now();
    if (last && last.endedAt === null) last.endedAt = now;
    this.record.phases.push({ phase, startedAt: now, endedAt: null, devices });
  }

  drop(phase: SecAggPhase, id: string): void {
    (this.record.dropped[phase] ??= []).push(id);
  }

  close(_phase: SecAggPhase, outcome: 'unmasked' | 'failed', reason?: string): void {
    const last = this.record.phases[this.record.phases.length - 1];
    if (last && last.endedAt === null) last.endedAt = Date.now();
    this.record.outcome = outcome;
    if (reason) this.record.reason = reason;
  }
}
