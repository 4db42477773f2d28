/**
 * Experiment (issue 6): accuracy against privacy for DP-FedAvg (McMahan et al. 2018) with
 * server-side clipping. For each noise multiplier z, the federation trains for R rounds; after
 * every round the coordinator's RDP accountant reports epsilon at delta (round metric dpEpsilon,
 * subsampled Gaussian with q = clientsPerRound / population), and the committed model is
 * evaluated on the test set. z = 0 (clipping only, no privacy) is the reference.
 *
 *   npx tsx bench/exp-privacy.ts [--noise 0,0.5,1,2] [--clip 0.5] [--rounds 15] [--clients 1000]
 *     [--clients-per-round 100] [--delta 1e-5] [--seed 1] [--out docs/experiments]
 *
 * DP needs many devices per round: the noise on the mean is z*S/E per coordinate, so with E = 10
 * (the other experiments) any meaningful z drowns the 199,210-parameter MLP. The default here is
 * the DP-FedAvg shape instead: 1000 devices of 60 IID rows each, 100 per round (q = 0.1), E=1,
 * B=10: the same 6,000 examples of local training per round as 10 devices of 600.
 */
import { parseArgs } from 'node:util';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { accuracyPoints, commandLine, loadRuns, markdownTable, pct, runOne, writeExperiment, type RunOutcome } from './exp-common.js';

const { values } = parseArgs({
  options: {
    noise: { type: 'string', default: '0,0.5,1,2' },
    clip: { type: 'string', default: '0.5' },
    rounds: { type: 'string', default: '15' },
    clients: { type: 'string', default: '1000' },
    'clients-per-round': { type: 'string', default: '100' },
    delta: { type: 'string', default: '1e-5' },
    budgets: { type: 'string', default: '1,2,4,8,16' },
    /** The accuracy-against-ε chart shows rounds with ε up to this (the table and JSON keep all). */
    'chart-eps-max': { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: 'docs/experiments' },
    /** Re-derive the table and charts from a saved privacy.json instead of training. */
    replot: { type: 'string' },
  },
});
const replot = values.replot;
const saved = replot ? await loadRuns<{ z: number }>(replot) : undefined;
if (saved) Object.assign(values, saved.settings, { replot, out: values.out, ...pick(['budgets', 'chart-eps-max']) });

/** Flags given on this command line win over saved settings (presentation-only flags, with --replot). */
function pick(keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const i = process.argv.indexOf(`--${k}`);
    if (i > 0 && process.argv[i + 1] !== undefined) out[k] = process.argv[i + 1];
  }
  return out;
}
const noises = values.noise!.split(',').filter(Boolean).map(Number);
const budgets = values.budgets!.split(',').filter(Boolean).map(Number);
const clients = Number(values.clients);
const perRound = Number(values['clients-per-round']);
const examplesPerClient = Math.floor(60000 / clients);
const q = perRound / clients;

const runs: Array<RunOutcome & { z: number }> = saved ? saved.runs : [];
for (const z of saved ? [] : noises) {
  const args = [
    '--clients', String(clients), '--clients-per-round', String(perRound), '--examples-per-client', String(examplesPerClient),
    '--epochs', '1', '--batch-size', '10', '--model', 'mlp', '--partition', 'iid', '--lr', '0.1', '--rounds', values.rounds!,
    '--target-accuracy', '0.999', '--seed', values.seed!, '--task', `dp-z${z}`,
  ];
  const plan = {
    overSelect: 1,
    strategy: {
      name: 'dpfedavg',
      params: { noiseMultiplier: z, clipNorm: Number(values.clip), clipping: 'server', populationSize: clients, targetDelta: Number(values.delta), seed: Number(values.seed) },
    },
  };
  runs.push({ ...(await runOne({ label: z === 0 ? 'z = 0 (clipping only)' : `z = ${z}`, args, plan })), z });
}

const eps = (r: RunOutcome) => r.rounds.map((p) => p.trainMetrics.dpEpsilon ?? Infinity);
/** Accuracy of the last model released within an epsilon budget (training stops when the budget is spent). */
const atBudget = (r: RunOutcome, b: number): string => {
  const e = eps(r);
  let acc: number | null = null;
  let round = 0;
  r.rounds.forEach((p, i) => {
    if (e[i] <= b && p.accuracy !== null) {
      acc = p.accuracy;
      round = p.round;
    }
  });
  return acc === null ? '-' : `${pct(acc)} (r${round})`;
};
const fmtEps = (e: number) => (Number.isFinite(e) ? e.toFixed(2) : '∞ (no noise)');

const table = markdownTable(
  ['noise multiplier z', 'clip S', 'noise std on the mean (z·S/E)', `ε after round ${values.rounds} (δ=${values.delta})`, `accuracy after round ${values.rounds}`, ...budgets.map((b) => `accuracy at ε ≤ ${b}`)],
  runs.map((r) => {
    const e = eps(r);
    return [
      String(r.z),
      values.clip!,
      (r.z * Number(values.clip) / perRound).toExponential(2),
      fmtEps(e.length ? e[e.length - 1] : Infinity),
      pct(r.finalAccuracy),
      ...budgets.map((b) => (r.z === 0 ? 'n/a' : atBudget(r, b))),
    ];
  }),
);

const noisy = runs.filter((r) => r.z > 0);
const epsMax = Number(values['chart-eps-max']);
const hidden = noisy.reduce((n, r) => n + r.rounds.filter((p) => (p.trainMetrics.dpEpsilon ?? 0) > epsMax).length, 0);
const charts: Record<string, string> = {
  'privacy-epsilon.svg': renderAccuracyChart({
    title: 'DP-FedAvg: test accuracy against ε',
    subtitle: `δ=${values.delta}, S=${values.clip}, ${clients} devices, ${perRound} per round (q=${q}), E=1, B=10; one point per round` +
      (hidden ? `; ε > ${epsMax} not drawn` : ''),
    xLabel: `ε (RDP accountant, δ=${values.delta}; log scale)`,
    xScale: 'log10',
    series: noisy.map((r) => ({
      name: `z = ${r.z}`,
      points: r.rounds
        .filter((p) => p.accuracy !== null && p.trainMetrics.dpEpsilon !== undefined && p.trainMetrics.dpEpsilon <= epsMax)
        .map((p) => ({ x: Number(p.trainMetrics.dpEpsilon.toFixed(2)), y: p.accuracy! })),
    })),
  }),
  'privacy-rounds.svg': renderAccuracyChart({
    title: 'DP-FedAvg: test accuracy by round',
    subtitle: `S=${values.clip}, ${clients} devices of ${examplesPerClient} rows, ${perRound} per round, E=1, B=10, lr 0.1`,
    series: runs.map((r) => ({ name: r.z === 0 ? 'z = 0 (no noise)' : `z = ${r.z}`, points: accuracyPoints(r) })),
  }),
};

const md = `# Privacy: DP-FedAvg accuracy against ε

Generated by \`${replot ? `npx tsx bench/exp-privacy.ts --noise ${values.noise} --rounds ${values.rounds} --budgets ${values.budgets}` : commandLine('bench/exp-privacy.ts')}\`${replot ? ` (table and charts re-derived from the saved runs with \`--replot ${replot}\`)` : ''} on ${new Date().toISOString().slice(0, 10)}.

Setting: DP-FedAvg (strategy \`dpfedavg\`, inner FedAvg) with server-side clipping to L2 norm S=${values.clip} and Gaussian
noise of std z·S/E on the mean of E=${perRound} clipped updates per round. ${clients} devices with ${examplesPerClient} IID MNIST rows
each, ${perRound} per round (sampling rate q=${q}, no over-selection), E=1, B=10, client SGD lr 0.1, 2NN MLP, seed ${values.seed}
(the noise is seeded for repeatability: a seeded run is not private), ${values.rounds} rounds per run. ε is the coordinator's
round metric \`dpEpsilon\` (Rényi DP of the subsampled Gaussian mechanism, converted at δ=${values.delta}). "accuracy at ε ≤ b":
the test accuracy of the last committed model whose ε was within b ("-": even round 1 spent more).

${table}
Charts: [privacy-epsilon.svg](privacy-epsilon.svg) (accuracy against ε, one point per round${hidden ? `; the ${hidden} rounds with ε > ${epsMax} are in the table and JSON only` : ''}),
[privacy-rounds.svg](privacy-rounds.svg) (accuracy by round, with the no-noise reference). Per-round series: [privacy.json](privacy.json).
`;

const files = await writeExperiment('privacy', md, charts, runs, values, values.out);
console.log('\n' + table);
console.log(`Wrote ${files.join(', ')}`);
process.exit(0);
