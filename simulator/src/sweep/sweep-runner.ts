import { median } from '@flotilla/server/stats';
import { parseCliOptions, type SimOptions } from '../cli-options.js';
import { createProgress } from '../progress.js';
import { runSimulation, type SimulationHooks, type SimulationResult } from '../simulation.js';
import type { SweepConfig } from './grid.js';
import { metricValue, type Metric } from './metric.js';

/**
 * Runs every (configuration, seed) of a sweep through the simulator's own runner (runSimulation:
 * in-process coordinator, real SDK devices in worker threads), `parallel` runs at a time, seed by
 * seed (every configuration's seed 1 before any seed 2), and stops hopeless ones early:
 *   budget rule (metric rounds-to:X, stopFactor > 0): a run still short of X after stopFactor times
 *     the fewest rounds any finished run of the same seed needed is stopped (it cannot come within
 *     that factor of the best);
 *   median rule (medianFrom > 0; Golovin et al. 2017, "Google Vizier", median stopping): from round
 *     medianFrom on, a run whose best accuracy so far is below the median of the best accuracies
 *     that the other runs of the same seed had by the same round (at least two of them) is stopped.
 * A configuration stopped early on one seed is hopeless: its later seeds are skipped. Nothing is
 * extrapolated: a stopped run counts as "not reached".
 */
export interface SweepRun {
  config: string;
  strategy: string;
  seed: number;
  status: 'done' | 'stopped' | 'skipped' | 'failed';
  /** The metric's value, or null (not reached, stopped, skipped, failed). */
  value: number | null;
  points: Array<{ round: number; accuracy: number }>;
  wallS: number;
  /** Why it stopped early, was skipped or failed. */
  note?: string;
  bytesUp: number;
}

export interface SweepOptions {
  base: string[];
  configs: readonly SweepConfig[];
  seeds: readonly number[];
  metric: Metric;
  parallel: number;
  /** --workers of each run when the base flags do not set it. */
  workersPerRun: number;
  stopFactor: number;
  medianFrom: number;
  log?(line: string): void;
  /** Called after every finished (or skipped) run with all runs so far: the CLI rewrites its report, so a sweep cut short keeps its results. */
  onRun?(runs: readonly SweepRun[]): Promise<void> | void;
  /** The runner (tests may pass a stand-in only to test scheduling; the CLI always runs runSimulation). */
  run?(opts: SimOptions, hooks: SimulationHooks): Promise<Pick<SimulationResult, 'results'>>;
}

interface Job {
  config: SweepConfig;
  seed: number;
}

/** Best accuracy so far at each round of a curve (rounds without a point carry the previous best). */
function bestBy(points: ReadonlyArray<{ round: number; accuracy: number }>, round: number): number | null {
  let best: number | null = null;
  for (const p of points) if (p.round <= round) best = Math.max(best ?? 0, p.accuracy);
  return best;
}

export async function runSweep(o: SweepOptions): Promise<SweepRun[]> {
  const log = o.log ?? (() => {});
  const run = o.run ?? runSimulation;
  const jobs: Job[] = o.seeds.flatMap((seed) => o.configs.map((config) => ({ config, seed })));
  const runs: SweepRun[] = [];
  const live = new Map<Job, SweepRun>();
  const hopeless = new Map<string, string>();
  const hasFlag = (f: string) => o.base.includes(`--${f}`);
  let next = 0;

  const finishedBest = (seed: number): number | null => {
    const vs = runs.filter((r) => r.seed === seed && r.status === 'done' && r.value !== null).map((r) => r.value!);
    return vs.length ? Math.min(...vs) : null;
  };

  const stopCheck = (job: Job, me: SweepRun, round: number): string | null => {
    if (o.metric.kind === 'rounds-to' && o.stopFactor > 0) {
      const best = finishedBest(job.seed);
      if (best !== null && round > o.stopFactor * best) return `stopped at round ${round}: more than ${o.stopFactor} x the ${best} rounds of the best finished run of seed ${job.seed}`;
    }
    if (o.medianFrom > 0 && round >= o.medianFrom) {
      const others = [...runs, ...live.values()]
        .filter((r) => r !== me && r.seed === job.seed && r.points.some((p) => p.round >= round))
        .map((r) => bestBy(r.points, round))
        .filter((v): v is number => v !== null);
      const mine = bestBy(me.points, round);
      if (others.length >= 2 && mine !== null && mine < median(others)) {
        return `stopped at round ${round}: best accuracy ${(mine * 100).toFixed(2)}% below the median ${(median(others) * 100).toFixed(2)}% of ${others.length} other runs of seed ${job.seed}`;
      }
    }
    return null;
  };

  const one = async (job: Job): Promise<SweepRun> => {
    const me: SweepRun = { config: job.config.label, strategy: job.config.strategy, seed: job.seed, status: 'done', value: null, points: [], wallS: 0, bytesUp: 0 };
    const why = hopeless.get(job.config.label);
    if (why) return { ...me, status: 'skipped', note: `skipped: ${why}` };
    const args = [...o.base, ...job.config.args, '--seed', String(job.seed), '--quiet'];
    args.push('--target-accuracy', o.metric.kind === 'rounds-to' ? String(o.metric.target) : '1');
    if (!hasFlag('workers')) args.push('--workers', String(o.workersPerRun));
    if (!hasFlag('eval-clients')) args.push('--eval-clients', '0');
    const opts = parseCliOptions(args) as SimOptions;
    const abort = new AbortController();
    live.set(job, me);
    const t0 = Date.now();
    try {
      const r = await run(opts, {
        noFiles: true,
        progress: createProgress({ total: opts.rounds, quiet: true }),
        signal: abort.signal,
        onRound: (row) => {
          if (row.failed || row.accuracy === null || abort.signal.aborted) return;
          me.points.push({ round: row.round, accuracy: row.accuracy });
          me.bytesUp += row.bytesUp;
          if (o.metric.kind === 'rounds-to' && row.accuracy >= o.metric.target) return;
          const stop = stopCheck(job, me, row.round);
          if (stop) {
            me.status = 'stopped';
            me.note = stop;
            abort.abort();
          }
        },
      });
      if (me.points.length === 0) for (const row of r.results.rounds) if (!row.failed && row.accuracy !== null) me.points.push({ round: row.round, accuracy: row.accuracy });
      me.value = me.status === 'stopped' ? null : metricValue(o.metric, me.points);
      if (me.status === 'stopped') hopeless.set(job.config.label, `stopped early on seed ${job.seed}`);
    } catch (err) {
      me.status = 'failed';
      me.note = err instanceof Error ? err.message : String(err);
    } finally {
      live.delete(job);
      me.wallS = (Date.now() - t0) / 1000;
    }
    return me;
  };

  const lane = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const r = await one(job);
      runs.push(r);
      const what = r.status === 'skipped' || r.status === 'failed' ? r.note : r.status === 'stopped' ? r.note : r.value === null ? `not reached by round ${r.points.at(-1)?.round ?? 0}` : `${o.metric.kind === 'rounds-to' ? 'round' : 'value'} ${r.value}`;
      log(`[${runs.length}/${jobs.length}] ${r.config} | seed ${r.seed}: ${what}${r.status === 'skipped' ? '' : ` (${r.wallS.toFixed(0)} s)`}`);
      await o.onRun?.(runs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.parallel, jobs.length)) }, lane));
  return runs;
}
