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
import type { TaskPlanInput } from '@flotilla/client/protocol';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { accuracyPoints, commandLine, markdownTable, pct, runOne, writeExperiment, type RunOutcome } from './exp-common.js';

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
    label: 'FedAvg + screening',
    plan: { strategy: { name: 'fedavg', params: {} }, screening: { action: 'reject', multiplier: 3, window: 100, minHistory: 10 } },
    note: 'reject norms > 3x median of the last 100 accepted (after 10 known)',
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
if (!values['no-baseline']) {
  const r = await runOne({ label: 'FedAvg, no attack', args: [...baseArgs(), '--task', 'poison-baseline'], plan: DEFENSES.fedavg.plan });
  baseline = { ...r, attack: 'none', defense: 'fedavg' };
}
for (const a of attacks) {
  for (const d of defenses) {
    const def = DEFENSES[d];
    const r = await runOne({ label: `${def.label} / ${a}`, args: [...baseArgs(), '--attack', a, '--task', `poison-${d}`], plan: def.plan });
    runs.push({ ...r, attack: a, defense: d });
  }
}

const poisonedSent = (r: Run) => Number(r.pool.attacks ?? 0);
const normRejected = (r: Run) => r.rounds.reduce((s, p) => s + p.rejectedCodes.filter((c) => c.includes('NORM')).length, 0);
const last = (r: Run) => (r.rounds.length ? r.rounds[r.rounds.length - 1].round : 0);

const table = markdownTable(
  ['attack', 'aggregation', 'settings', `accuracy after round ${values.rounds}`, 'best', 'poisoned updates sent', 'reports rejected by norm screening', 'rounds'],
  [
    ...(baseline ? [['none', 'FedAvg', DEFENSES.fedavg.note, pct(baseline.finalAccuracy), pct(baseline.bestAccuracy), '0', '0', last(baseline)]] : []),
    ...runs.map((r) => [r.attack, DEFENSES[r.defense].label, DEFENSES[r.defense].note, pct(r.finalAccuracy), pct(r.bestAccuracy), poisonedSent(r), normRejected(r), last(r)]),
  ],
);

const charts: Record<string, string> = {};
for (const a of attacks) {
  const kind = a.split(':')[0];
  charts[`poisoning-${kind}.svg`] = renderAccuracyChart({
    title: `Poisoning: ${attackLabel(a)}`,
    subtitle: `IID MNIST, 2NN MLP, ${values.clients} devices, ${values['clients-per-round']} reports per round, E=1, B=10, lr 0.1`,
    series: [
      ...(baseline ? [{ name: 'FedAvg, no attack', points: accuracyPoints(baseline) }] : []),
      ...runs.filter((r) => r.attack === a).map((r) => ({ name: DEFENSES[r.defense].label, points: accuracyPoints(r) })),
    ],
  });
}

const md = `# Poisoning: FedAvg against robust aggregation

Generated by \`${commandLine('bench/exp-poisoning.ts')}\` on ${new Date().toISOString().slice(0, 10)}.

Setting: IID MNIST, 2NN MLP, ${values.clients} devices, ${values['clients-per-round']} reports aggregated per round (13 asked:
over-selection 1.3), E=1, B=10, client SGD lr 0.1, seed ${values.seed}, ${values.rounds} rounds per run, central evaluation on
the 10,000 test images. Attackers: a fixed, seeded 10% of the devices (flotilla-sim \`--attack\`), which train honestly and
then report a poisoned delta every time they are selected:
${attacks.map((a) => `- \`${a}\`: ${attackLabel(a)}`).join('\n')}

Honest deltas in this setting have L2 norm about 1.4-3 (measured on one device, first six local epochs), so the noise
attack's updates (norm about 0.1 x sqrt(199,210) = 45) are some 20x larger than honest ones, and the scaled ones 10x.

${table}
Charts: ${attacks.map((a) => `[poisoning-${a.split(':')[0]}.svg](poisoning-${a.split(':')[0]}.svg)`).join(', ')}. Per-round series: [poisoning.json](poisoning.json).
`;

const files = await writeExperiment('poisoning', md, charts, baseline ? [baseline, ...runs] : runs, values, values.out);
console.log('\n' + table);
console.log(`Wrote ${files.join(', ')}`);
process.exit(0);
