import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderAccuracyChart } from './svg-chart.js';

/**
 * What a simulation run leaves behind, in DIR:
 *   results.json  { config, rounds: RoundRow[], summary }
 *   results.csv   one line per round, the RoundRow columns in order
 *   accuracy.svg  test accuracy against round (model step in async mode), with the target line
 *   accuracy-time.svg  the same against wall-clock seconds since training started, so sync and
 *                 async runs compare on one axis
 */
export interface RoundRow {
  /** Round number as the coordinator counts it (attempts; failed rounds included). */
  round: number;
  /** Central test accuracy of the version the round committed (federated when no central); null for failed rounds. */
  accuracy: number | null;
  loss: number | null;
  /** Devices whose reports were aggregated. */
  participants: number;
  failed: boolean;
  durationMs: number;
  bytesUp: number;
  bytesDown: number;
  /** Wall-clock ms from the start of training to when the simulator saw the round close. */
  elapsedMs: number;
}

export interface RunSummary {
  roundsCommitted: number;
  roundsFailed: number;
  finalAccuracy: number | null;
  bestAccuracy: number | null;
  /** First round whose accuracy reached the target, or null. */
  reachedTargetAt: number | null;
  wallMs: number;
  stopReason: string;
}

export interface Results {
  config: Record<string, unknown>;
  rounds: RoundRow[];
  summary?: RunSummary;
}

export const CSV_COLUMNS = ['round', 'accuracy', 'loss', 'participants', 'failed', 'durationMs', 'bytesUp', 'bytesDown', 'elapsedMs'] as const;

/** The shape of a coordinator RoundRecord that rows are built from (see server/src/store/records.ts). */
export interface RoundRecordLike {
  round: number;
  state: string;
  reported?: string[];
  startedAt: number;
  endedAt?: number;
  trainMetrics?: Record<string, number>;
  evalMetrics?: Record<string, number>;
  centralMetrics?: Record<string, number>;
  bytesUp?: number;
  bytesDown?: number;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * One row from a closed round. Accuracy prefers central evaluation, then federated evaluation;
 * `fallbackAccuracy` (e.g. the simulator's own evaluation in --url mode) overrides both.
 */
export function roundRowFromRecord(r: RoundRecordLike, fallback?: { accuracy: number; loss: number }): RoundRow {
  const failed = r.state === 'failed';
  const accuracy = failed ? null : (fallback?.accuracy ?? num(r.centralMetrics?.accuracy) ?? num(r.evalMetrics?.accuracy));
  const loss = failed ? null : (fallback?.loss ?? num(r.centralMetrics?.loss) ?? num(r.evalMetrics?.loss) ?? num(r.trainMetrics?.loss));
  return {
    round: r.round,
    accuracy,
    loss,
    participants: failed ? 0 : (num(r.trainMetrics?.participants) ?? r.reported?.length ?? 0),
    failed,
    durationMs: Math.max(0, (r.endedAt ?? r.startedAt) - r.startedAt),
    bytesUp: r.bytesUp ?? 0,
    bytesDown: r.bytesDown ?? 0,
    elapsedMs: 0,
  };
}

export function summarize(rows: RoundRow[], target: number | undefined, wallMs: number, stopReason: string): RunSummary {
  const ok = rows.filter((r) => !r.failed && r.accuracy !== null);
  const reached = target === undefined ? undefined : ok.find((r) => (r.accuracy as number) >= target);
  return {
    roundsCommitted: rows.filter((r) => !r.failed).length,
    roundsFailed: rows.filter((r) => r.failed).length,
    finalAccuracy: ok.length ? ok[ok.length - 1].accuracy : null,
    bestAccuracy: ok.length ? Math.max(...ok.map((r) => r.accuracy as number)) : null,
    reachedTargetAt: reached ? reached.round : null,
    wallMs,
    stopReason,
  };
}

export function toCsv(rows: RoundRow[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v));
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) lines.push(CSV_COLUMNS.map((c) => cell(r[c])).join(','));
  return lines.join('\n') + '\n';
}

export interface ChartLabels {
  title?: string;
  subtitle?: string;
  target?: number;
  /** What a row's number counts (default 'round'; 'model step' in async mode). */
  xLabel?: string;
}

export function accuracySvg(results: Results, labels: ChartLabels = {}, x: 'round' | 'time' = 'round'): string {
  const rows = results.rounds.filter((r) => r.accuracy !== null);
  const points = rows.map((r) => ({ x: x === 'time' ? r.elapsedMs / 1000 : r.round, y: r.accuracy as number }));
  const unit = labels.xLabel ?? 'Round';
  return renderAccuracyChart({
    xLabel: x === 'time' ? 'Wall-clock seconds since training started' : unit,
    ...(x === 'time' ? { xUnit: 's' } : {}),
    title: labels.title ?? `Test accuracy by ${x === 'time' ? 'wall-clock time' : unit.toLowerCase()}`,
    subtitle: labels.subtitle,
    target: labels.target,
    failedX: x === 'time' ? [] : results.rounds.filter((r) => r.failed).map((r) => r.round),
    series: [{ name: 'test accuracy', points }],
  });
}

export interface WrittenFiles {
  json: string;
  csv: string;
  svg: string;
  svgTime: string;
}

/** Write the three result files into `dir` (created if missing); returns their paths. */
export async function writeResults(dir: string, results: Results, labels: ChartLabels = {}): Promise<WrittenFiles> {
  await mkdir(dir, { recursive: true });
  const files = { json: join(dir, 'results.json'), csv: join(dir, 'results.csv'), svg: join(dir, 'accuracy.svg'), svgTime: join(dir, 'accuracy-time.svg') };
  await writeFile(files.json, JSON.stringify(results, null, 2) + '\n');
  await writeFile(files.csv, toCsv(results.rounds));
  await writeFile(files.svg, accuracySvg(results, labels));
  await writeFile(files.svgTime, accuracySvg(results, labels, 'time'));
  return files;
}

/** Default output folder: ./runs/<ISO timestamp without colons>/ */
export function defaultOutDir(now = new Date(), base = 'runs'): string {
  return join(base, now.toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z'));
}
