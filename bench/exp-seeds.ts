/**
 * Merge saved runs of bench/exp-noniid.ts (or any experiment saved with exp-common.ts's
 * writeExperiment / savePartial, whose runs carry `partition` and `strategy` and whose settings
 * carry `seed`) from several seeds into one table per partition: rounds to each threshold per seed,
 * mean, standard deviation and range over the seeds that reached it, and the paired ratio against a
 * baseline strategy (baseline's rounds / the strategy's rounds, same seed). Writes <name>.md, a
 * spread chart per partition and threshold's last value, and accuracy curves of every run.
 *
 *   node --import ./scripts/dev-loader.mjs bench/exp-seeds.ts --runs a.json,b.partial.json,... \
 *     [--thresholds 0.9,0.95,0.97] [--baseline fedavg] [--name seeds] [--out DIR] [--y-min 0.9]
 *
 * Rows are configurations: a strategy with its settings (two settings of one strategy are two rows).
 * The same (partition, configuration, seed) in two files is an error unless --prefer-last is given
 * (then the later file wins), so a repeated run is never silently dropped.
 */
import { parseArgs } from 'node:util';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { metricName, spread } from '../simulator/src/sweep/metric.js';
import { renderSpreadChart } from '../simulator/src/sweep/spread-chart.js';
import { loadRuns, markdownTable, reachText, roundsTo, settingsOf, type RunOutcome } from './exp-common.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    thresholds: { type: 'string', default: '0.9,0.95,0.97' },
    baseline: { type: 'string', default: 'fedavg' },
    name: { type: 'string', default: 'seeds' },
    out: { type: 'string', default: 'docs/experiments' },
    'y-min': { type: 'string' },
    'prefer-last': { type: 'boolean', default: false },
  },
});
if (!values.runs) throw new Error('--runs a.json,b.json is required');
const thresholds = values.thresholds!.split(',').map(Number);
const baseline = values.baseline!;

type Run = RunOutcome & { partition: string; strategy: string; seed: number; file: string };

/** "fedavgm serverLearningRate=1 serverMomentum=0.5": the strategy and its settings, from the plan. */
function configLabel(r: Pick<Run, 'strategy' | 'plan'>): string {
  return [r.strategy, settingsOf(r.plan)].filter(Boolean).join(' ');
}

const byKey = new Map<string, Run>();
for (const file of values.runs.split(',').filter(Boolean)) {
  const saved = await loadRuns<{ partition: string; strategy: string }>(file);
  const seed = Number(saved.settings.seed ?? 1);
  for (const r of saved.runs) {
    const key = `${r.partition}/${configLabel(r)}/${seed}`;
    if (byKey.has(key) && !values['prefer-last']) throw new Error(`${key} is in ${byKey.get(key)!.file} and ${file}; pass --prefer-last to keep the later one`);
    byKey.set(key, { ...r, seed, file });
  }
}
const runs = [...byKey.values()];

/** "rounds to 97%", worded as the sweep tool words its metric. */
const roundsToText = (t: number) => metricName({ kind: 'rounds-to', target: t });
const sections: string[] = [];
const files: Record<string, string> = {};
const partitions = [...new Set(runs.map((r) => r.partition))].sort().reverse();
for (const p of partitions) {
  const mine = runs.filter((r) => r.partition === p);
  const configs = [...new Set(mine.map(configLabel))];
  const seeds = [...new Set(mine.map((r) => r.seed))].sort((a, b) => a - b);
  for (const t of thresholds) {
    const rows = configs.map((c) => {
      const rs = mine.filter((r) => configLabel(r) === c).sort((a, b) => a.seed - b.seed);
      const reached = rs.map((r) => roundsTo(r, t)).filter((v): v is number => v !== null);
      const st = spread(reached);
      const ratios = rs.flatMap((r) => {
        const b = mine.find((x) => x.strategy === baseline && x.seed === r.seed);
        const rb = b ? roundsTo(b, t) : null;
        const rr = roundsTo(r, t);
        return rb !== null && rr !== null ? [rb / rr] : [];
      });
      const perSeed = rs.map((r) => `s${r.seed}: ${reachText(r, t)}`).join(', ');
      return { label: c, st, reached: reached.length, ran: rs.length, ratios, perSeed, values: reached };
    });
    rows.sort((a, b) => b.reached / b.ran - a.reached / a.ran || (a.st?.mean ?? Infinity) - (b.st?.mean ?? Infinity));
    const table = markdownTable(
      ['configuration', `${roundsToText(t)}: mean`, 'std', 'min-max', 'seeds reached', 'per seed', `${baseline} / this, paired by seed (mean [min-max])`],
      rows.map((r) => {
        const q = spread(r.ratios);
        return [
          r.label,
          r.st ? r.st.mean.toFixed(1) : '-',
          r.st ? r.st.std.toFixed(1) : '-',
          r.st ? `${r.st.min}-${r.st.max}` : '-',
          `${r.reached}/${r.ran}`,
          r.perSeed,
          q ? `${q.mean.toFixed(2)}x [${q.min.toFixed(2)}-${q.max.toFixed(2)}] (${q.n} seeds)` : '-',
        ];
      }),
    );
    sections.push(`### ${p}: ${roundsToText(t)} (seeds ${seeds.join(', ')})\n\n${table}`);
    if (t === thresholds[thresholds.length - 1]) {
      const svg = `${values.name}-${p}-spread.svg`;
      files[svg] = renderSpreadChart({
        title: `${p}: ${roundsToText(t)}, mean and range over seeds`,
        subtitle: `seeds ${seeds.join(', ')}; dots: each seed that reached it; lower is better`,
        xLabel: roundsToText(t),
        percent: false,
        rows: rows.filter((r) => r.st).map((r) => ({ label: `${r.label} (${r.reached}/${r.ran})`, mean: r.st!.mean, min: r.st!.min, max: r.st!.max, values: r.values })),
      });
      sections.push(`Chart: [${svg}](${svg})\n`);
    }
  }
  const curves = `${values.name}-${p}-curves.svg`;
  files[curves] = renderAccuracyChart({
    title: `${p}: test accuracy by round, every seed`,
    subtitle: 'each run until its target or cap',
    target: thresholds[thresholds.length - 1],
    ...(values['y-min'] !== undefined ? { yMin: Number(values['y-min']) } : {}),
    series: mine
      .sort((a, b) => configLabel(a).localeCompare(configLabel(b)) || a.seed - b.seed)
      .map((r) => ({ name: `${configLabel(r)} s${r.seed}`, points: r.rounds.filter((x) => x.accuracy !== null).map((x) => ({ x: x.round, y: x.accuracy! })) })),
  });
  sections.push(`Curves: [${curves}](${curves})\n`);
}

const md = `# Rounds to accuracy over seeds

Generated by \`node --import ./scripts/dev-loader.mjs bench/exp-seeds.ts ${process.argv.slice(2).join(' ')}\` on ${new Date().toISOString().slice(0, 10)}
from these saved runs (partition / configuration / seed: file):

${runs.map((r) => `- ${r.partition} / ${configLabel(r)} / seed ${r.seed}: \`${r.file}\` (${r.rounds.length} rounds, ${r.stopReason ?? 'stopped'})`).join('\n')}

Mean, standard deviation and range are over the seeds that reached the threshold; "not reached by round N"
means the run ended at round N (its cap, or it was stopped) without reaching it. The last column divides the
baseline's rounds by the strategy's on the same seed (above 1: the strategy needed fewer rounds).

${sections.join('\n')}`;
await mkdir(values.out!, { recursive: true });
await writeFile(join(values.out!, `${values.name}.md`), md);
for (const [f, svg] of Object.entries(files)) await writeFile(join(values.out!, f), svg);
console.log(md);
