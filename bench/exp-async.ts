/**
 * Experiment (issue 16): synchronous FedAvg against asynchronous FedBuff on MNIST with
 * heterogeneous device speeds. Same data, model, partition, seed and device speeds in both modes
 * (flotilla-sim --device-speed: one multiplier per device, drawn from the seed). For each run:
 * wall-clock seconds, model updates folded (a proxy of device compute: each is one local epoch) and
 * MB uploaded until each accuracy threshold, the accuracy at the end, and for async runs the
 * staleness histogram. Anchor: FedBuff (Nguyen et al. 2022) reports reaching target accuracy up to
 * 3.3x faster than synchronous FedAvg. Nothing is extrapolated: a threshold not reached is "not reached".
 *
 *   node --import ./scripts/dev-loader.mjs bench/exp-async.ts [--seeds 1,2] [--partitions iid] [--clients 30] [--train-limit 6000]
 *     [--test-limit 2000] [--speed lognormal:0:1] [--device-time-ms 2000] [--clients-per-round 10]
 *     [--concurrency 10] [--buffer-size 5] [--staleness poly:0.5] [--thresholds 0.9,0.93]
 *     [--rounds 40] [--steps 160] [--max-seconds 420] [--out docs/experiments]
 *
 *   node --import ./scripts/dev-loader.mjs bench/exp-async.ts --replot docs/experiments/async.json [--thresholds 0.85,0.88]
 *
 * --replot re-derives the tables and charts from a saved run (other thresholds, no training); the
 * staleness histograms are kept from the saved page when the JSON has none.
 *
 * Sync runs select exactly --clients-per-round devices per round (overSelect 1) and wait for all of
 * them; async runs keep --concurrency devices training and step every --buffer-size reports.
 */
import { parseArgs } from 'node:util';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { readFile } from 'node:fs/promises';
import { commandLine, loadRuns, markdownTable, pct, runOne, savePartial, writeExperiment, type RunOutcome } from './exp-common.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2' },
    partitions: { type: 'string', default: 'iid' },
    alpha: { type: 'string', default: '0.3' },
    clients: { type: 'string', default: '30' },
    'train-limit': { type: 'string', default: '6000' },
    'test-limit': { type: 'string', default: '2000' },
    speed: { type: 'string', default: 'lognormal:0:1' },
    'device-time-ms': { type: 'string', default: '2000' },
    'clients-per-round': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '10' },
    'buffer-size': { type: 'string', default: '5' },
    staleness: { type: 'string', default: 'poly:0.5' },
    thresholds: { type: 'string', default: '0.9,0.93' },
    rounds: { type: 'string', default: '40' },
    steps: { type: 'string', default: '160' },
    'max-seconds': { type: 'string', default: '420' },
    out: { type: 'string', default: 'docs/experiments' },
    name: { type: 'string', default: 'async' },
    replot: { type: 'string' },
  },
});
const replot = values.replot;
type Run = RunOutcome & { mode: 'sync' | 'async'; seed: number; partition: string };
const runs: Run[] = [];
let savedHistograms: string | null = null;
if (replot) {
  const thresholdsFlag = values.thresholds;
  const saved = await loadRuns<{ mode: 'sync' | 'async'; seed: number; partition: string; rounds: unknown }>(replot);
  Object.assign(values, saved.settings, { replot, out: values.out, name: values.name, thresholds: process.argv.includes('--thresholds') ? thresholdsFlag : saved.settings.thresholds });
  // loadRuns keeps the fields every experiment has; this one also needs each row's time.
  const raw = JSON.parse(await readFile(replot, 'utf8')) as { runs: Array<{ rounds: Array<{ elapsedMs?: number }> }> };
  saved.runs.forEach((r, i) => r.rounds.forEach((p, j) => (p.elapsedMs = raw.runs[i].rounds[j].elapsedMs ?? 0)));
  runs.push(...(saved.runs as Run[]));
  const page = await readFile(replot.replace(/\.json$/, '.md'), 'utf8').catch(() => '');
  const m = /\n(\| partition \| seed \| reports[\s\S]*?\n)\n/.exec(page);
  savedHistograms = m ? m[1] : null;
}
const thresholds = values.thresholds!.split(',').map(Number);
const target = Math.max(...thresholds);
const savedCommand = (values as Record<string, unknown>).command as string | undefined;
const partLabel = (p: string) => (p === 'dirichlet' ? `dirichlet α=${values.alpha}` : p);

for (const partition of replot ? [] : values.partitions!.split(',')) {
  for (const seed of values.seeds!.split(',').map(Number)) {
    for (const mode of ['sync', 'async'] as const) {
      const common = [
        '--clients', values.clients!, '--train-limit', values['train-limit']!, '--test-limit', values['test-limit']!, '--model', 'mlp',
        '--partition', partition, '--alpha', values.alpha!, '--epochs', '1', '--batch-size', '10', '--lr', '0.1', '--seed', String(seed),
        '--device-speed', values.speed!, '--device-time-ms', values['device-time-ms']!, '--target-accuracy', String(target),
        '--deadline-ms', '600000', '--workers', '2', '--task', `async-exp-${partition}-${mode}-${seed}`,
      ];
      const args = mode === 'sync'
        ? [...common, '--clients-per-round', values['clients-per-round']!, '--rounds', values.rounds!]
        : [...common, '--mode', 'async', '--concurrency', values.concurrency!, '--buffer-size', values['buffer-size']!, '--staleness', values.staleness!, '--rounds', values.steps!];
      const abort = new AbortController();
      const cap = setTimeout(() => abort.abort(), Number(values['max-seconds']) * 1000);
      const run = await runOne({ label: `${mode === 'sync' ? 'sync FedAvg' : 'async FedBuff'}, ${partLabel(partition)}, seed ${seed}`, args, plan: mode === 'sync' ? { overSelect: 1 } : {} }, { signal: abort.signal });
      clearTimeout(cap);
      runs.push({ ...run, mode, seed, partition });
      await savePartial(values.out!, values.name!, values, runs);
    }
  }
}

/** The first round/step reaching `t`: its time, updates folded and MB uploaded up to it. */
function reach(r: Run, t: number): { s: number; updates: number; mb: number; at: number } | null {
  let updates = 0;
  let bytes = 0;
  for (const p of r.rounds) {
    updates += p.participants;
    bytes += p.bytesUp;
    if (p.accuracy !== null && p.accuracy >= t) return { s: p.elapsedMs / 1000, updates, mb: bytes / 1e6, at: p.round };
  }
  return null;
}
const last = (r: Run) => r.rounds[r.rounds.length - 1];
const notReached = (r: Run) => `not reached (${r.mode === 'sync' ? 'round' : 'step'} ${last(r)?.round ?? 0}, ${((last(r)?.elapsedMs ?? 0) / 1000).toFixed(0)} s)`;

const rows = runs.map((r) => {
  const cells: Array<string | number> = [partLabel(r.partition), r.seed, r.mode === 'sync' ? 'sync FedAvg' : 'async FedBuff'];
  for (const t of thresholds) {
    const x = reach(r, t);
    cells.push(x ? `${x.s.toFixed(0)} s (${r.mode === 'sync' ? 'round' : 'step'} ${x.at}), ${x.updates} updates, ${x.mb.toFixed(0)} MB` : notReached(r));
  }
  cells.push(pct(r.finalAccuracy), r.rounds.length, `${((last(r)?.elapsedMs ?? 0) / 1000).toFixed(0)} s`);
  return cells;
});
const table = markdownTable(['partition', 'seed', 'mode', ...thresholds.map((t) => `to ${pct(t, 0)}: wall clock, updates, uploaded`), 'final accuracy', 'rounds / steps', 'training time'], rows);

// Speed-up per seed: sync time / async time to each threshold.
const speedRows: Array<Array<string | number>> = [];
for (const partition of new Set(runs.map((r) => r.partition))) {
  for (const seed of new Set(runs.map((r) => r.seed))) {
    const s = runs.find((r) => r.partition === partition && r.seed === seed && r.mode === 'sync');
    const a = runs.find((r) => r.partition === partition && r.seed === seed && r.mode === 'async');
    if (!s || !a) continue;
    speedRows.push([partLabel(partition), seed, ...thresholds.map((t) => {
      const xs = reach(s, t);
      const xa = reach(a, t);
      return xs && xa ? `${(xs.s / xa.s).toFixed(2)}x` : xa && !xs ? `> ${(((last(s)?.elapsedMs ?? 0) / 1000) / xa.s).toFixed(2)}x (sync did not reach it)` : '-';
    })]);
  }
}
const speedTable = markdownTable(['partition', 'seed', ...thresholds.map((t) => `wall-clock speed-up to ${pct(t, 0)} (sync / async)`)], speedRows);

const histRows = runs.filter((r) => r.mode === 'async').map((r) => {
  const h = new Map<number, number>();
  for (const p of r.rounds) for (const [k, v] of Object.entries(p.trainMetrics)) if (k.startsWith('staleness.')) h.set(Number(k.slice(10)), (h.get(Number(k.slice(10))) ?? 0) + v);
  const total = [...h.values()].reduce((a, b) => a + b, 0);
  const keys = [...h.keys()].sort((a, b) => a - b);
  const mean = keys.reduce((s, k) => s + k * h.get(k)!, 0) / Math.max(1, total);
  return [partLabel(r.partition), r.seed, total, mean.toFixed(2), keys.map((k) => `${k}: ${h.get(k)}`).join(', ')];
});
const histTable = savedHistograms && histRows.every((r) => r[2] === 0) ? savedHistograms : markdownTable(['partition', 'seed', 'reports', 'mean staleness', 'histogram (staleness: reports)'], histRows);

const series = (x: (p: Run['rounds'][number]) => number) => runs.map((r) => ({ name: `${r.mode === 'sync' ? 'sync' : 'async'} ${partLabel(r.partition)} seed ${r.seed}`, points: r.rounds.filter((p) => p.accuracy !== null).map((p) => ({ x: x(p), y: p.accuracy! })) }));
const subtitle = `2NN MLP, ${values.clients} devices, ${values['train-limit']} MNIST rows, speeds ${values.speed} x ${values['device-time-ms']} ms; sync ${values['clients-per-round']}/round, async ${values.concurrency} training, K=${values['buffer-size']}, ${values.staleness}`;
const charts = {
  [`${values.name}-time.svg`]: renderAccuracyChart({ title: 'Sync FedAvg vs async FedBuff: test accuracy by wall-clock time', subtitle, target, xLabel: 'Wall-clock seconds since training started', xUnit: 's', series: series((p) => p.elapsedMs / 1000) }),
  [`${values.name}-steps.svg`]: renderAccuracyChart({ title: 'Sync FedAvg vs async FedBuff: test accuracy by model step (a sync round is one step)', subtitle, target, xLabel: 'Model step', series: series((p) => p.round) }),
};

const md = `# Asynchronous FL: sync FedAvg against async FedBuff

${replot ? `Re-derived with \`node --import ./scripts/dev-loader.mjs bench/exp-async.ts --replot ${replot} --thresholds ${values.thresholds}\` (no training) from the runs of \`${savedCommand ?? 'bench/exp-async.ts (command not saved)'}\`` : `Generated by \`${commandLine('bench/exp-async.ts')}\``} on ${new Date().toISOString().slice(0, 10)}.

Setting: the 2NN MLP (784-200-200-10), ${values.clients} devices holding the first ${values['train-limit']} MNIST training rows
(${values.partitions} partition${values.partitions!.includes('dirichlet') ? `, Dirichlet α=${values.alpha}` : ''}), E=1, B=10, client SGD lr 0.1; central evaluation of every
committed model on the first ${values['test-limit']} MNIST test images. Device speeds: \`--device-speed ${values.speed}\`: device i
holds its report until m_i x ${values['device-time-ms']} ms after its instruction arrived (the nominal time covers fetching the model and training, so the
simulator's shared CPU stays out of the fleet's clock unless it cannot keep up), m_i = exp(N(0,1)) drawn from the seed, the
same fleet in the sync and the async run of a seed. Sync: ${values['clients-per-round']} devices per round, no over-selection (the
round waits for its slowest device). Async: ${values.concurrency} devices training at once, a model step every ${values['buffer-size']} reports,
staleness weighting ${values.staleness}, server lr 1, a version published every step. Each run stops at ${pct(target, 0)} or its cap
(${values.rounds} rounds / ${values.steps} steps / ${values['max-seconds']} s).

${table}
${speedTable}
Staleness of the reports folded by each async run (model steps between the version a device trained
from and the step its report went into):

${histTable}
Charts: [accuracy by wall-clock time](${values.name}-time.svg), [accuracy by model step](${values.name}-steps.svg).
`;
const settings = { ...values, command: savedCommand ?? commandLine('bench/exp-async.ts') };
const paths = await writeExperiment(values.name!, md, charts, runs, settings as Record<string, unknown>, values.out);
console.log(`\n${table}\n${speedTable}\n${histTable}\nwrote ${paths.join(', ')}`);
