import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { CliUsageError, SIM_FLAGS, parseCliOptions, type SimOptions } from '../cli-options.js';
import { parseGrid, validateConfigs } from './grid.js';
import { parseMetric } from './metric.js';
import { runSweep, type SweepRun } from './sweep-runner.js';
import { writeSweepReport, type SweepReportInput } from './sweep-report.js';

export const SWEEP_USAGE = `Usage: flotilla-sim sweep --grid @grid.json --metric rounds-to:0.97 --seeds 1,2,3 [sweep flags] [flotilla-sim flags]

Runs every configuration of a grid of plans over several seeds with the simulator, and writes a
table sorted by the metric (mean, spread over seeds) and charts. Any other flotilla-sim flag given
here (e.g. --partition shards --clients 100) is the base of every run.

  --grid @FILE|JSON     the grid: {"base": {flag: value}, "grid": [{flag: value | [values], "strategy-params": {...}}]}
                        or just the array; flag names as flotilla-sim's without dashes (see simulator/README.md)
  --metric M            rounds-to:X (default rounds-to:0.97), best-accuracy or final-accuracy
  --seeds S,S,...       seeds of every configuration (default 1,2,3)
  --parallel P          runs at a time (default: half the CPU cores, at least 1); each run gets
                        cores / P worker threads unless --workers is given
  --stop-factor F       rounds-to: stop a run after F times the best finished run's rounds of the same
                        seed (default 2; 0 disables)
  --median-from R       stop a run whose best accuracy at round R or later is below the median of the
                        other runs of its seed (default: a quarter of --rounds; 0 disables)
  --top K               configurations in the chart (default 12)
  --out DIR             output folder (default ./runs/sweep-<timestamp>/)
  --replot FILE         re-derive the table and charts from a sweep.json into --out, without running
`;

const SWEEP_FLAGS = {
  grid: { type: 'string' },
  metric: { type: 'string' },
  seeds: { type: 'string' },
  parallel: { type: 'string' },
  'stop-factor': { type: 'string' },
  'median-from': { type: 'string' },
  top: { type: 'string' },
  out: { type: 'string' },
  replot: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const num = (flag: string, min: number, int = true) => {
  const n = z.coerce.number({ error: `--${flag} must be a number` }).min(min, `--${flag} must be at least ${min}`);
  return int ? n.int(`--${flag} must be an integer`) : n;
};

export async function sweepMain(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    const { out: _o, help: _h, ...sim } = SIM_FLAGS;
    ({ values } = parseArgs({ args: argv, options: { ...sim, ...SWEEP_FLAGS }, strict: true, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`flotilla-sim sweep: ${(err as Error).message.replace(/\. To specify a positional.*$/s, '')}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(SWEEP_USAGE);
    return 0;
  }
  try {
    if (typeof values.replot === 'string') {
      const saved = JSON.parse(readGridFile(values.replot)) as Omit<SweepReportInput, 'outDir' | 'top'>;
      const report = await writeSweepReport({ ...saved, outDir: (values.out as string | undefined) ?? '.', top: Number(values.top ?? 12) });
      process.stdout.write(`Results: ${report.files.join(', ')}\n`);
      return 0;
    }
    if (typeof values.grid !== 'string') throw new CliUsageError('--grid is required (@file.json or inline JSON)');
    const gridText = values.grid.startsWith('@') ? readGridFile(values.grid.slice(1)) : values.grid;
    const metric = parseMetric((values.metric as string | undefined) ?? 'rounds-to:0.97');
    const seeds = ((values.seeds as string | undefined) ?? '1,2,3').split(',').map((s) => {
      const r = num('seeds', 0).max(2 ** 31 - 1).safeParse(s.trim());
      if (!r.success) throw new CliUsageError(`--seeds must be comma-separated integers; got "${s}"`);
      return r.data;
    });
    if (new Set(seeds).size !== seeds.length) throw new CliUsageError('--seeds repeats a seed');
    const pick = <T>(schema: z.ZodType<T>, v: unknown, dflt: T): T => {
      if (v === undefined) return dflt;
      const r = schema.safeParse(v);
      if (!r.success) throw new CliUsageError(r.error.issues[0].message);
      return r.data;
    };
    const cores = availableParallelism();
    const parallel = pick(num('parallel', 1).max(64), values.parallel, Math.max(1, Math.floor(cores / 2)));
    const stopFactor = pick(num('stop-factor', 0, false), values['stop-factor'], 2);
    const top = pick(num('top', 1), values.top, 12);
    const { base: gridBase, configs } = parseGrid(gridText);
    const cliBase: string[] = [];
    for (const [k, v] of Object.entries(values)) {
      if (k in SWEEP_FLAGS || v === undefined) continue;
      if (['seed', 'quiet', 'target-accuracy', 'url', 'token', 'admin-token', 'demo'].includes(k)) throw new CliUsageError(`--${k} is set by the sweep itself (use --seeds and --metric)`);
      cliBase.push(...(v === true ? [`--${k}`] : [`--${k}`, String(v)]));
    }
    const base = [...gridBase, ...cliBase];
    validateConfigs(base, configs);
    const rounds = (parseCliOptions([...base, '--quiet']) as SimOptions).rounds;
    const medianFrom = pick(num('median-from', 0), values['median-from'], Math.ceil(rounds / 4));
    const outDir = (values.out as string | undefined) ?? `runs/sweep-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const workersPerRun = Math.max(1, Math.floor(cores / parallel));
    process.stdout.write(`flotilla-sim sweep: ${configs.length} configurations x ${seeds.length} seeds = ${configs.length * seeds.length} runs, ${parallel} at a time (${workersPerRun} worker thread(s) each)\n`);
    const command = `flotilla-sim sweep ${argv.join(' ')}`;
    const total = configs.length * seeds.length;
    // The report is rewritten after every run (marked partial until the last), so a sweep cut short keeps what it measured.
    const onRun = async (so: readonly SweepRun[]) => {
      if (so.length < total) await writeSweepReport({ outDir, command, metric, seeds, configs, runs: so, base, top, partial: `${so.length} of ${total} runs finished` });
    };
    const runs = await runSweep({ base, configs, seeds, metric, parallel, workersPerRun, stopFactor, medianFrom, log: (l) => process.stdout.write(l + '\n'), onRun });
    const report = await writeSweepReport({ outDir, command, metric, seeds, configs, runs, base, top });
    process.stdout.write('\n' + report.md.split('\n').filter((l) => l.startsWith('|')).join('\n') + '\n');
    process.stdout.write(`\nResults: ${report.files.join(', ')}\n`);
    return runs.every((r) => r.status === 'failed') ? 1 : 0;
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(`flotilla-sim sweep: ${err.message}\n\nRun flotilla-sim sweep --help for the flags.\n`);
      return 2;
    }
    throw err;
  }
}

function readGridFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliUsageError(`--grid: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
