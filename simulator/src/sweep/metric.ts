import { CliUsageError } from '../cli-options.js';

/**
 * What a sweep ranks configurations by, per run:
 *   rounds-to:X     first round whose test accuracy reached X (lower is better; null: not reached)
 *   best-accuracy   best test accuracy of the run (higher is better)
 *   final-accuracy  test accuracy of the last round (higher is better)
 */
export type Metric = { kind: 'rounds-to'; target: number } | { kind: 'best-accuracy' } | { kind: 'final-accuracy' };

export function parseMetric(s: string): Metric {
  const m = /^rounds-to:(0?\.\d+|1(\.0*)?)$/.exec(s);
  if (m) {
    const target = Number(m[1]);
    if (target > 0 && target <= 1) return { kind: 'rounds-to', target };
  }
  if (s === 'best-accuracy' || s === 'final-accuracy') return { kind: s };
  throw new CliUsageError(`--metric must be rounds-to:X (X in (0, 1]), best-accuracy or final-accuracy; got "${s}"`);
}

export function metricName(m: Metric): string {
  return m.kind === 'rounds-to' ? `rounds to ${Number((m.target * 100).toFixed(2))}%` : m.kind === 'best-accuracy' ? 'best accuracy' : 'final accuracy';
}

export const lowerIsBetter = (m: Metric) => m.kind === 'rounds-to';

/** The metric of one run from its accuracy by round (committed rounds only, in order). */
export function metricValue(m: Metric, points: ReadonlyArray<{ round: number; accuracy: number }>): number | null {
  if (points.length === 0) return null;
  if (m.kind === 'rounds-to') return points.find((p) => p.accuracy >= m.target)?.round ?? null;
  if (m.kind === 'best-accuracy') return Math.max(...points.map((p) => p.accuracy));
  return points[points.length - 1].accuracy;
}

export interface Spread {
  n: number;
  mean: number;
  /** Sample standard deviation (0 for one value). */
  std: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread | null {
  if (values.length === 0) return null;
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { n, mean, std, min: Math.min(...values), max: Math.max(...values) };
}
