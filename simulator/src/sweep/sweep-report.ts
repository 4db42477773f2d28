import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderAccuracyChart } from '../svg-chart.js';
import type { SweepConfig } from './grid.js';
import { lowerIsBetter, metricName, spread, type Metric, type Spread } from './metric.js';
import type { SweepRun } from './sweep-runner.js';
import { renderSpreadChart } from './spread-chart.js';

/**
 * What a sweep leaves in its output folder:
 *   sweep.md          the configurations sorted by the metric: mean, standard deviation and range over
 *                     the seeds that reached it, how many did, and every seed's own outcome
 *   sweep.svg         the best configurations' mean and range over seeds (dots: each seed)
 *   sweep-curves.svg  test accuracy by round of the best configuration of each strategy, first seed
 *   sweep.json        every run: settings, status, metric value, accuracy by round
 */
export interface ConfigSummary {
  config: SweepConfig;
  runs: SweepRun[];
  stats: Spread | null;
  /** Runs that were not skipped, and how many of them have a metric value. */
  ran: number;
  reached: number;
}

export function summarizeSweep(configs: readonly SweepConfig[], runs: readonly SweepRun[], metric: Metric): ConfigSummary[] {
  const rows = configs.map((config) => {
    const mine = runs.filter((r) => r.config === config.label).sort((a, b) => a.seed - b.seed);
    const values = mine.filter((r) => r.value !== null).map((r) => r.value!);
    return { config, runs: mine, stats: spread(values), ran: mine.filter((r) => r.status !== 'skipped').length, reached: values.length };
  });
  const sign = lowerIsBetter(metric) ? 1 : -1;
  // Most seeds reaching the metric first, then the better mean; configurations without any value last.
  return rows.sort((a, b) => {
    const fa = a.ran ? a.reached / a.ran : 0;
    const fb = b.ran ? b.reached / b.ran : 0;
    if (fa !== fb) return fb - fa;
    if (!a.stats || !b.stats) return a.stats ? -1 : b.stats ? 1 : 0;
    return sign * (a.stats.mean - b.stats.mean);
  });
}

const fmt = (metric: Metric, v: number) => (metric.kind === 'rounds-to' ? Number(v.toFixed(1)).toString() : `${(v * 100).toFixed(2)}%`);

function seedText(metric: Metric, r: SweepRun): string {
  if (r.status === 'skipped') return `s${r.seed}: skipped`;
  if (r.status === 'failed') return `s${r.seed}: failed`;
  if (r.status === 'stopped') return `s${r.seed}: stopped @${r.points.at(-1)?.round ?? 0}`;
  if (r.value === null) return `s${r.seed}: not by ${r.points.at(-1)?.round ?? 0}`;
  return `s${r.seed}: ${fmt(metric, r.value)}`;
}

export function sweepTable(rows: readonly ConfigSummary[], metric: Metric): string {
  const name = metricName(metric);
  const head = ['#', 'configuration', `${name}: mean`, 'std', 'min-max', 'seeds reached', 'per seed', 'wall time'];
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  const out = [line(head), line(head.map(() => '---'))];
  rows.forEach((r, i) => {
    const s = r.stats;
    out.push(
      line([
        i + 1,
        r.config.label,
        s ? fmt(metric, s.mean) : '-',
        s ? (metric.kind === 'rounds-to' ? s.std.toFixed(1) : `${(s.std * 100).toFixed(2)}`) : '-',
        s ? `${fmt(metric, s.min)}-${fmt(metric, s.max)}` : '-',
        `${r.reached}/${r.ran}`,
        r.runs.map((x) => seedText(metric, x)).join(', '),
        `${r.runs.reduce((a, x) => a + x.wallS, 0).toFixed(0)} s`,
      ]),
    );
  });
  return out.join('\n') + '\n';
}

export interface SweepReportInput {
  outDir: string;
  command: string;
  metric: Metric;
  seeds: readonly number[];
  configs: readonly SweepConfig[];
  runs: readonly SweepRun[];
  base: readonly string[];
  top: number;
  /** Set while the sweep is still running (or was cut short): says how far it got. */
  partial?: string;
}

export async function writeSweepReport(o: SweepReportInput): Promise<{ md: string; files: string[]; rows: ConfigSummary[] }> {
  const rows = summarizeSweep(o.configs, o.runs, o.metric);
  const table = sweepTable(rows, o.metric);
  const name = metricName(o.metric);
  const shown = rows.filter((r) => r.stats).slice(0, o.top);
  const spreadSvg = renderSpreadChart({
    title: `Sweep: ${name}, mean and range over seeds`,
    subtitle: `best ${shown.length} of ${rows.length} configurations; seeds ${o.seeds.join(', ')}${o.metric.kind === 'rounds-to' ? '; lower is better' : ''}`,
    xLabel: name,
    percent: o.metric.kind !== 'rounds-to',
    rows: shown.map((r) => ({ label: `${r.config.label} (${r.reached}/${r.ran})`, mean: r.stats!.mean, min: r.stats!.min, max: r.stats!.max, values: r.runs.filter((x) => x.value !== null).map((x) => x.value!) })),
  });
  const bestPerStrategy = [...new Map(rows.filter((r) => r.stats).reverse().map((r) => [r.config.strategy, r])).values()].reverse();
  // The first seed's run of each (runs stop at a rounds-to target, so a mean over seeds would end with the fastest seed; the spread is in sweep.svg).
  const firstSeed = o.seeds[0];
  const curvesSvg = renderAccuracyChart({
    title: 'Sweep: the best configuration of each strategy',
    subtitle: `test accuracy by round, seed ${firstSeed}; settings in sweep.md, other seeds in sweep.json`,
    ...(o.metric.kind === 'rounds-to' ? { target: o.metric.target } : {}),
    series: bestPerStrategy.map((r) => ({ name: r.config.strategy, points: (r.runs.find((x) => x.seed === firstSeed)?.points ?? []).map((p) => ({ x: p.round, y: p.accuracy })) })),
  });
  const md = `# Sweep: ${name}

Command: \`${o.command}\`
${o.partial ? `\n**Partial: ${o.partial}** (configurations and seeds without a run are not in the counts).\n` : ''}
Base flags: \`${o.base.join(' ') || '(none)'}\`; seeds ${o.seeds.join(', ')}; ${o.configs.length} configurations, ${o.runs.length} runs
(${o.runs.filter((r) => r.status === 'stopped').length} stopped early, ${o.runs.filter((r) => r.status === 'skipped').length} skipped as hopeless, ${o.runs.filter((r) => r.status === 'failed').length} failed).
Mean, standard deviation and range are over the seeds that reached the metric; "seeds reached" counts them against the runs made.
Sorted by the share of seeds reached, then by the mean.

${table}
Charts: [sweep.svg](sweep.svg) (mean and range of the best ${shown.length}), [sweep-curves.svg](sweep-curves.svg) (accuracy by round of each strategy's best, first seed). Every run: [sweep.json](sweep.json).
`;
  await mkdir(o.outDir, { recursive: true });
  const files = [join(o.outDir, 'sweep.md'), join(o.outDir, 'sweep.svg'), join(o.outDir, 'sweep-curves.svg'), join(o.outDir, 'sweep.json')];
  await writeFile(files[0], md);
  await writeFile(files[1], spreadSvg);
  await writeFile(files[2], curvesSvg);
  const json = { command: o.command, ...(o.partial ? { partial: o.partial } : {}), metric: o.metric, seeds: o.seeds, base: o.base, configs: o.configs, runs: o.runs, ranking: rows.map((r) => ({ config: r.config.label, stats: r.stats, reached: r.reached, ran: r.ran })) };
  await writeFile(files[3], JSON.stringify(json, null, 1) + '\n');
  return { md, files, rows };
}
