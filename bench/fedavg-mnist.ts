/**
 * Benchmark: the McMahan et al. 2017 ("Communication-Efficient Learning of Deep Networks from
 * Decentralized Data") MNIST setting through the whole stack: 100 devices, C=0.1 (10 per round,
 * no over-selection), E=1, B=10, the 2NN (784-200-200-10) MLP, IID and pathological non-IID
 * (shards) partitions. Measures rounds to reach 97% central test accuracy and prints them beside
 * the paper's Table 2 figures (FedAvg, 2NN, E=1, B=10: 87 rounds IID, 664 rounds non-IID).
 *
 *   npx tsx bench/fedavg-mnist.ts [--partitions iid,shards] [--max-rounds 1000] [--max-minutes M] [--lr 0.1] [--workers W] [--seed 1]
 *
 * Non-IID takes hundreds of rounds; --max-rounds and --max-minutes (wall time per partition) cap
 * each run (a capped run prints "not reached" with the best accuracy seen). Writes .bench-out/fedavg-mnist/{iid,shards}/ result files
 * and accuracy.svg with both curves.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCliOptions } from '../simulator/src/cli-options.js';
import { createProgress, formatPct } from '../simulator/src/progress.js';
import { runSimulation } from '../simulator/src/simulation.js';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';

const PAPER: Record<string, number> = { iid: 87, shards: 664 };
const TARGET = 0.97;

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: 'iid,shards' },
    'max-rounds': { type: 'string', default: '1000' },
    'max-minutes': { type: 'string' },
    lr: { type: 'string', default: '0.1' },
    workers: { type: 'string' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: '.bench-out/fedavg-mnist' },
  },
});
const partitions = values.partitions!.split(',').map((s) => s.trim()).filter(Boolean);
const maxRounds = values['max-rounds']!;

interface Row {
  partition: string;
  paper: number;
  reachedAt: number | null;
  rounds: number;
  best: number | null;
  final: number | null;
  wallS: number;
  points: Array<{ x: number; y: number }>;
}
const rows: Row[] = [];

for (const p of partitions) {
  const args = [
    '--clients', '100', '--clients-per-round', '10', '--epochs', '1', '--batch-size', '10', '--model', 'mlp',
    '--partition', p, '--lr', values.lr!, '--rounds', maxRounds, '--target-accuracy', String(TARGET), '--seed', values.seed!,
    '--eval-clients', '0', '--out', join(values.out!, p),
  ];
  if (values.workers) args.push('--workers', values.workers);
  const opts = parseCliOptions(args);
  if (opts === 'help') throw new Error('unreachable');
  console.log(`\nfedavg-mnist: ${p}, 100 devices, C=0.1, E=1, B=10, lr=${opts.lr}, until ${formatPct(TARGET, 0)} or ${maxRounds} rounds`);
  const progress = createProgress({ total: opts.rounds, target: TARGET });
  const abort = new AbortController();
  const budget = values['max-minutes'] ? setTimeout(() => abort.abort(), Number(values['max-minutes']) * 60_000) : undefined;
  const r = await runSimulation(opts, { progress, plan: { overSelect: 1 }, signal: abort.signal });
  clearTimeout(budget);
  const s = r.results.summary!;
  rows.push({
    partition: p,
    paper: PAPER[p] ?? NaN,
    reachedAt: s.reachedTargetAt,
    rounds: r.results.rounds.length,
    best: s.bestAccuracy,
    final: s.finalAccuracy,
    wallS: s.wallMs / 1000,
    points: r.results.rounds.filter((x) => x.accuracy !== null).map((x) => ({ x: x.round, y: x.accuracy! })),
  });
}

await mkdir(values.out!, { recursive: true });
await writeFile(
  join(values.out!, 'accuracy.svg'),
  renderAccuracyChart({
    title: 'FedAvg, MNIST 2NN: test accuracy by round',
    subtitle: '100 devices, C=0.1, E=1, B=10 (McMahan et al. 2017 setting)',
    target: TARGET,
    series: rows.map((r) => ({ name: r.partition, points: r.points })),
  }),
);

console.log('\nRounds to reach 97% test accuracy (FedAvg, 2NN, C=0.1, E=1, B=10):\n');
console.log('| partition | paper (McMahan et al. 2017) | measured | rounds run | best accuracy | wall time |');
console.log('|-----------|-----------------------------|----------|------------|---------------|-----------|');
for (const r of rows) {
  const measured = r.reachedAt !== null ? String(r.reachedAt) : `not reached in ${r.rounds}`;
  const ratio = r.reachedAt !== null && Number.isFinite(r.paper) ? ` (${(r.reachedAt / r.paper).toFixed(2)}x paper)` : '';
  console.log(`| ${r.partition.padEnd(9)} | ${String(r.paper).padEnd(27)} | ${(measured + ratio).padEnd(8)} | ${String(r.rounds).padEnd(10)} | ${formatPct(r.best).padEnd(13)} | ${r.wallS.toFixed(0)} s |`);
}
console.log(`\nCharts and per-round results: ${values.out}/`);
process.exit(0);
