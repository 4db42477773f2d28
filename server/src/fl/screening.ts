import { z } from 'zod';
import { l2Norm } from './update-checks.js';
import { median } from './stats.js';

/**
 * Update screening by L2 norm: an update whose norm exceeds `multiplier` times the median of
 * recent accepted norms (or the absolute `maxNorm`) is rejected or clipped to the threshold. A
 * cheap first line against scaled or random poisoned updates, before any robust aggregator.
 *
 * The coordinator holds one NormScreen per task, calls `screen(delta)` on every decoded, finite
 * update before folding it in, and maps 'reject' to FL_ERR_REPORT_REJECTED_NORM. History:
 * accepted norms enter as is, clipped ones as the threshold, rejected ones not at all, so
 * outliers cannot drag the median up. Until `minHistory` norms are known only `maxNorm` applies.
 * The decision functions are pure; NormScreen only adds the sliding window.
 */
export const ScreeningOptionsSchema = z
  .object({
    action: z.enum(['reject', 'clip']).default('reject'),
    multiplier: z.number().gt(1).max(1e6).default(3),
    window: z.number().int().min(1).max(100_000).default(100),
    minHistory: z.number().int().min(1).max(100_000).default(10),
    maxNorm: z.number().positive().optional(),
  })
  .strict()
  .refine((o) => o.minHistory <= o.window, { message: 'minHistory must not exceed window', path: ['minHistory'] });
export type ScreeningOptions = z.infer<typeof ScreeningOptionsSchema>;

export interface ScreeningDecision {
  verdict: 'accept' | 'clip' | 'reject';
  norm: number;
  /** The norm bound in force (Infinity when none applies yet). */
  threshold: number;
}

/** The bound for the next update given the recent accepted norms (most recent last). */
export function screeningThreshold(history: readonly number[], o: ScreeningOptions): number {
  const recent = history.slice(-o.window);
  const relative = recent.length >= o.minHistory ? o.multiplier * median(recent) : Infinity;
  return Math.min(relative, o.maxNorm ?? Infinity);
}

/** What to do with an update of this norm. Non-finite norms are rejected. */
export function screenNorm(norm: number, history: readonly number[], o: ScreeningOptions): ScreeningDecision {
  const threshold = screeningThreshold(history, o);
  if (!Number.isFinite(norm)) return { verdict: 'reject', norm, threshold };
  if (norm <= threshold) return { verdict: 'accept', norm, threshold };
  return { verdict: o.action, norm, threshold };
}

export class NormScreen {
  private history: number[] = [];

  constructor(readonly options: ScreeningOptions) {}

  /** Decide on `delta`, clip it in place when the verdict is 'clip', and record the outcome. */
  screen(delta: Float32Array): ScreeningDecision {
    const d = screenNorm(l2Norm(delta), this.history, this.options);
    if (d.verdict === 'clip') {
      const s = d.threshold / d.norm;
      for (let i = 0; i < delta.length; i++) delta[i] *= s;
    }
    if (d.verdict !== 'reject') this.record(d.verdict === 'clip' ? d.threshold : d.norm);
    return d;
  }

  private record(norm: number): void {
    this.history.push(norm);
    if (this.history.length > this.options.window) this.history.splice(0, this.history.length - this.options.window);
  }

  get recentNorms(): readonly number[] {
    return this.history;
  }

  exportState(): number[] {
    return [...this.history];
  }

  importState(norms: unknown): void {
    if (!Array.isArray(norms) || norms.some((n) => typeof n !== 'number' || !(n >= 0))) throw new RangeError('screening state: malformed');
    this.history = norms.slice(-this.options.window) as number[];
  }
}
