/**
 * Experiment (issue 6): model poisoning. A fixed 10% of the devices (chosen once, seeded) send
 * poisoned updates every time they are selected (flotilla-sim --attack, through the SDK's
 * hooks.transformDelta): either their honest delta scaled by -10, or Gaussian noise. Measures
 * central test accuracy after R rounds for FedAvg against the robust aggregators (coordinate-wise
 * median, trimmed mean, Krum, norm-bounded averaging) and FedAvg behind norm screening, next to
 * FedAvg without attackers.
 *
 *   npx tsx bench/exp-poisoning.ts [--rounds 10] [--clients 100] [--clients-per-round 10]
 *     [--attacks scale:-10:0.1,noise:0.1:0.1] [--defenses fedavg,median,trimmed,krum,normbounded,screening]
 *     [--max-norm 2] [--seed 1] [--out docs/experiments]
 *
 * IID MNIST, 2NN MLP, E=1, B=10, client lr 0.1, the default over-selection 1.3 (13 devices asked,
 * the first 10 reports aggregated). --max-norm (norm bounding) defaults to 2: honest deltas of
 * this setting measured 1.4-3.0 in L2 norm (one device, 600 rows, first six rounds).
 */
import { parseArgs } from 'node:util';
import type { TaskPlanInput } from '@flotilla/protocol';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { accuracyPoints, commandLine, loadRuns, markdownTable, pct, runOne, writeExperiment, type RunOutcome } from './exp-common.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '100' },
    'clients-per-round': { type: 'string', default: '10' },
    attacks: { type: 'string', default: 'scale:-10:0.1,noise:0.1:0.1' },
    defenses: { type: 'string', default: 'fedavg,median,trimmed,krum,normbounded,screening' },
    'max-norm': { type: 'string', default: '2' },
    'trim-beta': { type: 'string', default: '0.2' },
    byzantine: { type: 'string', default: '2' },
    'no-baseline': { type: 'boolean', default: false },
    /** Re-derive the table and charts from saved poisoning.json file(s) (comma-separated; runs are merged) instead of training. */
    replot: { type: 'string' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: 'docs/experiments' },
  },
});
const attacks = values.attacks!.split(',').filter(Boolean);
const defenses = values.defenses!.split(',').filter(Boolean);

const DEFENSES: Record<string, { label: string; plan: Partial<TaskPlanInput>; note: string }> = {
  fedavg: { label: 'FedAvg', plan: { strategy: { name: 'fedavg', params: {} } }, note: 'weighted mean, no defense' },
  median: { label: 'Median', plan: { strategy: { name: 'fedmedian', params: {} } }, note: 'coordinate-wise median' },
  trimmed: { label: 'Trimmed mean', plan: { strategy: { name: 'fedtrimmedavg', params: { beta: Number(values['trim-beta']) } } }, note: `beta ${values['trim-beta']} cut from each end per coordinate` },
  krum: { label: 'Krum', plan: { strategy: { name: 'krum', params: { byzantine: Number(values.byzantine) } } }, note: `f=${values.byzantine}` },
  normbounded: { label: 'Norm bounding', plan: { strategy: { name: 'normbounded', params: { maxNorm: Number(values['max-norm']) } } }, note: `every update clipped to L2 ${values['max-norm']}, then FedAvg` },
  screening: {
    label: 'Norm screening',
    plan: { strategy: { name: 'fedavg', params: {} }, screening: { action: 'reject', multiplier: 3, window: 100, minHistory: 10 } },
    note: 'FedAvg; reject norms > 3x median of the last 100 accepted (after 10 known)',
  },
};
for (const d of defenses) if (!DEFENSES[d]) throw new Error(`unknown defense ${d}; known: ${Object.keys(DEFENSES).join(', ')}`);

const baseArgs = () => [
  '--clients', values.clients!, '--clients-per-round', values['clients-per-round']!, '--epochs', '1', '--batch-size', '10',
  '--model', 'mlp', '--partition', 'iid', '--lr', '0.1', '--rounds', values.rounds!, '--target-accuracy', '0.999',
  '--seed', values.seed!, '--deadline-ms', '30000',
];
const attackLabel = (a: string) => {
  const [kind, x, f] = a.split(':');
  return kind === 'scale' ? `${Number(f) * 100}% of devices send delta x ${x}` : `${Number(f) * 100}% of devices send N(0, ${x}²) noise`;
};

type Run = RunOutcome & { attack: string; defense: string };
const runs: Run[] = [];
let baseline: Run | undefined;
const replot = values.replot;
if (replot) {
  const files = replot.split(',').filter(Boolean);
  for (const [i, f] of files.entries()) {
    const saved = await loadRuns<{ attack: string; defense: string }>(f);
    if (i === 0) Object.assign(values, saved.settings, { replot, out: values.out });
    for (const r of saved.runs) {
      if (r.attack === 'none') baseline ??= r;
      else runs.push(r);
    }
  }
  attacks.splice(0, attacks.length, ...new Set(runs.map((r) => r.attack)));
  values.attacks = attacks.join(',');
} else if (!values['no-baseline']) {
  const r = await runOne({ label: 'FedAvg, no attack', args: [...baseArgs(), '--task', 'poison-baseline'], plan: DEFENSES.fedavg.plan });
  baseline = { ...r, attack: 'none', defense: 'fedavg' };
}
for (const a of replot ? [] : attacks) {
  for (const d of defenses) {
    const def = DEFENSES[d];
    const r = await runOne({ label: `${def.label} / ${a}`, args: [...baseArgs(), '--attack', a, '--task', `poison-${d}`], plan: def.plan });
    runs.push({ ...r, attack: a, defense: d });
  }
}

const poisonedSent = (r: Run) => Number(r.pool.attacks ?? 0);
const normRejected = (r: Run) => r.rounds.reduce((s, p) => s + p.rejectedCodes.filter((c) => c.includes('NORM')).length, 0);
const last = (r: Run) => (r.rounds.length ? r.rounds[r.rounds.length - 1].round : 0);
const accs = (r: Run) => r.rounds.map((p) => p.accuracy).filter((a): a is number => a !== null);
/** Mean accuracy over the last half of the rounds: one lucky (attacker-free) last round does not decide the row. */
const lateMean = (r: Run) => {
  const a = accs(r).slice(Math.floor(accs(r).length / 2));
  return a.length ? a.reduce((s, v) => s + v, 0) / a.length : null;
};
/** Worst accuracy after round 1. */
const worst = (r: Run) => {
  const a = accs(r).slice(1);
  return a.length ? Math.min(...a) : null;
};
const half = () => Math.floor(Number(values.rounds) / 2) + 1;

const table = markdownTable(
  ['attack', 'aggregation', 'settings', `accuracy after round ${values.rounds}`, `mean accuracy, rounds ${half()}-${values.rounds}`, 'worst after round 1', 'poisoned updates sent', 'reports rejected by norm screening', 'rounds'],
  [baseline, ...runs]
    .filter((r): r is Run => r !== undefined)
    .map((r) => [r.attack, r === baseline ? 'FedAvg' : DEFENSES[r.defense].label, DEFENSES[r.defense].note, pct(r.finalAccuracy), pct(lateMean(r)), pct(worst(r)), poisonedSent(r), normRejected(r), last(r)]),
);

/** One chart per attack: poisoning-scale-10.svg, poisoning-noise0.1.svg, ... */
const chartName = (a: string) => `poisoning-${a.split(':').slice(0, 2).join('')}.svg`;
const charts: Record<string, string> = {};
for (const a of attacks) {
  charts[chartName(a)] = renderAccuracyChart({
    title: `Poisoning: ${attackLabel(a)}`,
    subtitle: `IID MNIST, 2NN MLP, ${values.clients} devices, ${values['clients-per-round']} reports per round, E=1, B=10, lr 0.1`,
    series: [
      ...(baseline ? [{ name: 'FedAvg, no attack', points: accuracyPoints(baseline) }] : []),
      ...runs.filter((r) => r.attack === a).map((r) => ({ name: DEFENSES[r.defense].label, points: accuracyPoints(r) })),
    ],
  });
}

const md = `# Poisoning: FedAvg against robust aggregation

${replot ? `Runs of \`bench/exp-poisoning.ts\` (see README.md for the commands); table and charts re-derived from the saved runs with \`--replot ${replot}\`` : `Generated by \`${commandLine('bench/exp-poisoning.ts')}\``} on ${new Date().toISOString().slice(0, 10)}.

Setting: IID MNIST, 2NN MLP, ${values.clients} devices, ${values['clients-per-round']} reports aggregated per round (13 asked:
over-selection 1.3), E=1, B=10, client SGD lr 0.1, seed ${values.seed}, ${values.rounds} rounds per run, central evaluation on
the 10,000 test images. Attackers: a fixed, seeded 10% of the devices (flotilla-sim \`--attack\`), which train honestly and
then report a poisoned delta every time they are selected:
${attacks.map((a) => `- \`${a}\`: ${attackLabel(a)}`).join('\n')}

Honest deltas in this setting have L2 norm about 1.4-3 (measured on one device, first six local epochs). A noise update
of std s has norm about s x sqrt(199,210) = 446 s (45 for s = 0.1, 446 for s = 1): some 20x and 200x an honest one; the
scaled updates are 10x.
Whether an attacker is among a round's 10 aggregated reports is chance (10 of 100 devices are attackers), so FedAvg's
accuracy swings from round to round: the table gives the last round, the mean over the second half of the rounds and the
worst round after the first. "Poisoned updates sent" counts every poisoned report, including those of over-selected
devices that arrived after their round had closed.

${table}
Charts: ${attacks.map((a) => `[${chartName(a)}](${chartName(a)})`).join(', ')}. Per-round series: [poisoning.json](poisoning.json).
`;

const files = await writeExperiment('poisoning', md, charts, baseline ? [baseline, ...runs] : runs, values, values.out);
console.log('\n' + table);
console.log(`Wrote ${files.join(', ')}`);
process.exit(0);
