/**
 * Shared plumbing of the issue-6 experiments (bench/exp-*.ts): one simulator run per
 * configuration (in-process coordinator, real SDK devices, central test-set evaluation),
 * markdown tables, and the files each experiment leaves in docs/experiments/:
 *   <name>.md     the measured table(s) and the exact settings
 *   <name>*.svg   chart(s) drawn with the simulator's chart writer
 *   <name>.json   every run's per-round series, so tables and charts can be re-derived
 *
 * Runs are strictly sequential (one training run at a time). Nothing here extrapolates: a
 * threshold not reached within the cap is reported as "not reached by round N".
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TaskPlanInput } from '@flotilla/protocol';
import { parseCliOptions, type SimOptions } from '../simulator/src/cli-options.js';
import { createProgress, formatPct } from '../simulator/src/progress.js';
import type { RoundRow } from '../simulator/src/results.js';
import { runSimulation, type SimulationHooks } from '../simulator/src/simulation.js';

export const DOCS_DIR = 'docs/experiments';

export interface RunSpec {
  /** Row label in tables and chart legends. */
  label: string;
  /** flotilla-sim flags (see simulator/src/cli-options.ts). */
  args: string[];
  /** Extra task-plan fields: strategy, codec, screening, ... */
  plan?: Partial<TaskPlanInput>;
}

/** A committed round: the simulator's row plus the coordinator's aggregated train metrics. */
export interface RoundPoint extends RoundRow {
  trainMetrics: Record<string, number>;
  /** Error codes of the reports the coordinator rejected in this round (screening: FL_ERR_REPORT_REJECTED_NORM). */
  rejectedCodes: string[];
}

export interface RunOutcome {
  label: string;
  args: string[];
  plan: Partial<TaskPlanInput>;
  rounds: RoundPoint[];
  finalAccuracy: number | null;
  bestAccuracy: number | null;
  stopReason: string;
  wallS: number;
  /** Device pool statistics (uploads, attacks, rejections). */
  pool: Record<string, unknown>;
}

interface RoundRecordLike {
  round: number;
  trainMetrics?: Record<string, number>;
  rejected?: Array<{ code: string }>;
}

/**
 * A run's settings as it ran, read from its saved plan ("serverLearningRate=0.3 serverMomentum=0.7",
 * "mu=0.1"); "" when the strategy takes none. The one wording of settings for tables, legends and
 * for telling apart runs of one strategy with different settings (bench/exp-noniid.ts, bench/exp-seeds.ts).
 */
export function settingsOf(plan: Partial<TaskPlanInput> | undefined): string {
  const p = (plan ?? {}) as { strategy?: { params?: Record<string, unknown> }; proximalMu?: number };
  const params = Object.entries(p.strategy?.params ?? {}).map(([k, v]) => `${k}=${v}`);
  if (p.proximalMu) params.push(`mu=${p.proximalMu}`);
  return params.join(' ');
}

/** Run one configuration to its cap (or target) and collect its rounds. */
export async function runOne(spec: RunSpec, extraHooks: Partial<SimulationHooks> = {}): Promise<RunOutcome> {
  const opts = parseCliOptions([...spec.args, '--eval-clients', '0', '--quiet']);
  if (opts === 'help') throw new Error('unreachable');
  const records = new Map<number, RoundRecordLike>();
  const progress = createProgress({ total: opts.rounds, target: opts.targetAccuracy });
  console.log(`\n[${spec.label}] ${spec.args.join(' ')}${spec.plan ? ` plan ${JSON.stringify(spec.plan)}` : ''}`);
  const hooks: SimulationHooks = {
    progress,
    noFiles: true,
    ...(spec.plan ? { plan: spec.plan } : {}),
    ...extraHooks,
    onRecord: (r) => {
      records.set(r.round, r as RoundRecordLike);
      extraHooks.onRecord?.(r);
    },
  };
  const r = await runSimulation(opts as SimOptions, hooks);
  const s = r.results.summary!;
  const rounds: RoundPoint[] = r.results.rounds
    .filter((row) => !row.failed)
    .map((row) => {
      const rec = records.get(row.round);
      return { ...row, trainMetrics: rec?.trainMetrics ?? {}, rejectedCodes: (rec?.rejected ?? []).map((x) => x.code) };
    });
  console.log(`[${spec.label}] ${s.stopReason}: final ${formatPct(s.finalAccuracy)}, best ${formatPct(s.bestAccuracy)}, ${(s.wallMs / 1000).toFixed(0)} s`);
  return {
    label: spec.label,
    args: spec.args,
    plan: spec.plan ?? {},
    rounds,
    finalAccuracy: s.finalAccuracy,
    bestAccuracy: s.bestAccuracy,
    stopReason: s.stopReason,
    wallS: s.wallMs / 1000,
    pool: { ...r.pool },
  };
}

/** First round whose central test accuracy reached `threshold`, or null. */
export function roundsTo(run: RunOutcome, threshold: number): number | null {
  return run.rounds.find((p) => p.accuracy !== null && p.accuracy >= threshold)?.round ?? null;
}

/** "R" or "not reached by round N" (N = last round run). */
export function reachText(run: RunOutcome, threshold: number): string {
  const r = roundsTo(run, threshold);
  if (r !== null) return String(r);
  const last = run.rounds.length ? run.rounds[run.rounds.length - 1].round : 0;
  return `not reached by round ${last}`;
}

export function pct(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : `${(v * 100).toFixed(digits)}%`;
}

export function markdownTable(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

export function accuracyPoints(run: RunOutcome): Array<{ x: number; y: number }> {
  return run.rounds.filter((p) => p.accuracy !== null).map((p) => ({ x: p.round, y: p.accuracy! }));
}

/** Write docs/experiments/<name>.md, the charts and the raw series; returns the paths. */
export async function writeExperiment(
  name: string,
  markdown: string,
  charts: Record<string, string>,
  runs: RunOutcome[],
  settings: Record<string, unknown>,
  dir = DOCS_DIR,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  const md = join(dir, `${name}.md`);
  await writeFile(md, markdown);
  paths.push(md);
  for (const [file, svg] of Object.entries(charts)) {
    const p = join(dir, file);
    await writeFile(p, svg);
    paths.push(p);
  }
  const json = join(dir, `${name}.json`);
  const slim = runs.map((r) => ({
    ...r,
    rounds: r.rounds.map((p) => ({
      round: p.round,
      accuracy: p.accuracy,
      loss: p.loss,
      participants: p.participants,
      bytesUp: p.bytesUp,
      ...(p.elapsedMs ? { elapsedMs: p.elapsedMs } : {}),
      ...(p.rejectedCodes.length ? { rejected: p.rejectedCodes } : {}),
      ...(p.trainMetrics.dpEpsilon !== undefined ? { dpEpsilon: p.trainMetrics.dpEpsilon } : {}),
    })),
  }));
  await writeFile(json, JSON.stringify({ generatedAt: new Date().toISOString(), settings, runs: slim }, null, 1) + '\n');
  paths.push(json);
  return paths;
}

/**
 * Runs saved by writeExperiment, read back (for --replot: re-derive tables and charts without
 * training again). Only what the JSON keeps comes back: accuracy, loss, participants, bytesUp,
 * rejections and dpEpsilon per round; the run's pool statistics and labels.
 */
export async function loadRuns<T extends object = Record<string, never>>(path: string): Promise<{ settings: Record<string, unknown>; runs: Array<RunOutcome & T> }> {
  const j = JSON.parse(await readFile(path, 'utf8')) as { settings: Record<string, unknown>; runs: Array<Record<string, unknown> & { rounds: Array<Record<string, unknown>> }> };
  const runs = j.runs.map((r) => ({
    ...r,
    rounds: r.rounds.map((p) => ({
      round: p.round as number,
      accuracy: (p.accuracy as number | null) ?? null,
      loss: (p.loss as number | null) ?? null,
      participants: p.participants as number,
      failed: false,
      durationMs: 0,
      bytesUp: p.bytesUp as number,
      bytesDown: 0,
      rejectedCodes: (p.rejected as string[] | undefined) ?? [],
      trainMetrics: p.dpEpsilon !== undefined ? { dpEpsilon: p.dpEpsilon as number } : {},
    })),
  })) as unknown as Array<RunOutcome & T>;
  return { settings: j.settings, runs };
}

/**
 * Saves the runs finished so far as `<dir>/<name>.partial.json` (settings and full run records).
 * Full-size experiments take hours on this machine; calling this after every run means an
 * interruption or a crash in the final rendering loses no finished run.
 */
export async function savePartial(dir: string, name: string, settings: Record<string, unknown>, runs: RunOutcome[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}.partial.json`), JSON.stringify({ settings, runs }));
}

/** The command line that produced a file, for the markdown header. */
export function commandLine(script: string): string {
  return `npx tsx ${script} ${process.argv.slice(2).join(' ')}`.trim();
}
