/**
 * Experiment (issue 6): update compression in training. The same federation (IID MNIST, 2NN MLP,
 * 100 devices, 10 per round, E=1, B=10) with each delta codec the plan can name: f32, f16, int8
 * (per-block scale, stochastic rounding, error feedback) and topk 1% (values + indices, error
 * feedback on the device). Measures encoded bytes uploaded per round (as received by the
 * coordinator) and central test accuracy after R rounds.
 *
 *   npx tsx bench/exp-compression.ts [--rounds 12] [--codecs f32,f16,int8,topk] [--topk 0.01] [--thresholds 0.95,0.96,0.97]
 *     [--seed 1] [--out docs/experiments]
 *
 * Besides bytes per round and accuracy at the cap, a second table gives, per accuracy threshold,
 * the round each codec first reached it and the bytes uploaded up to and including that round:
 * the cost that matters when a codec needs more rounds to get as far.
 */
import { parseArgs } from 'node:util';
import type { TaskPlanInput } from '@flotilla/protocol';
import { renderAccuracyChart } from '../simulator/src/svg-chart.js';
import { accuracyPoints, commandLine, reachText, roundsTo, loadRuns, markdownTable, pct, runOne, writeExperiment, type RunOutcome } from './exp-common.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '12' },
    clients: { type: 'string', default: '100' },
    'clients-per-round': { type: 'string', default: '10' },
    codecs: { type: 'string', default: 'f32,f16,int8,topk' },
    topk: { type: 'string', default: '0.01' },
    thresholds: { type: 'string', default: '0.95,0.96,0.97' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: 'docs/experiments' },
    /** Re-derive the table and chart from a saved compression.json instead of training. */
    replot: { type: 'string' },
  },
});
const replot = values.replot;
const saved = replot ? await loadRuns<{ codec: string }>(replot) : undefined;
if (saved) Object.assign(values, saved.settings, { replot, out: values.out, thresholds: values.thresholds }); // --out and --thresholds: this command's
const codecs = values.codecs!.split(',').filter(Boolean);
const topk = Number(values.topk);
const label = (c: string) => (c === 'topk' ? `topk ${Number((topk * 100).toFixed(2))}%` : c);

const runs: Array<RunOutcome & { codec: string }> = saved ? saved.runs : [];
for (const c of saved ? [] : codecs) {
  const plan: Partial<TaskPlanInput> = { overSelect: 1, codec: c as TaskPlanInput['codec'], ...(c === 'topk' ? { topkFraction: topk } : {}) };
  const args = [
    '--clients', values.clients!, '--clients-per-round', values['clients-per-round']!, '--epochs', '1', '--batch-size', '10',
    '--model', 'mlp', '--partition', 'iid', '--lr', '0.1', '--rounds', values.rounds!, '--target-accuracy', '0.999',
    '--seed', values.seed!, '--task', `codec-${c}`,
  ];
  runs.push({ ...(await runOne({ label: label(c), args, plan })), codec: c });
}

const perRound = (r: RunOutcome) => (r.rounds.length ? r.rounds.reduce((s, p) => s + p.bytesUp, 0) / r.rounds.length : NaN);
const perReport = (r: RunOutcome) => {
  const reports = r.rounds.reduce((s, p) => s + p.participants, 0);
  return reports ? r.rounds.reduce((s, p) => s + p.bytesUp, 0) / reports : NaN;
};
const f32 = runs.find((r) => r.codec === 'f32');
const mb = (b: number) => (Number.isFinite(b) ? `${(b / 1e6).toFixed(3)} MB` : '-');
const kb = (b: number) => (Number.isFinite(b) ? `${(b / 1e3).toFixed(1)} kB` : '-');

const table = markdownTable(
  ['codec', 'bytes uploaded per round', 'per report', 'vs f32', `accuracy after round ${values.rounds}`, 'best accuracy', 'Δ accuracy vs f32 (points)', 'rounds'],
  runs.map((r) => [
    label(r.codec),
    mb(perRound(r)),
    kb(perReport(r)),
    f32 ? `${(perRound(r) / perRound(f32)).toFixed(4)}x` : '-',
    pct(r.finalAccuracy),
    pct(r.bestAccuracy),
    f32 && r.finalAccuracy !== null && f32.finalAccuracy !== null ? ((r.finalAccuracy - f32.finalAccuracy) * 100).toFixed(2) : '-',
    r.rounds.length,
  ]),
);

/** Bytes uploaded in rounds 1..i, for each round i of the run (same order as r.rounds). */
const cumulativeBytes = (r: RunOutcome) => {
  let sum = 0;
  return r.rounds.map((p) => (sum += p.bytesUp));
};
const thresholds = values.thresholds!.split(',').filter(Boolean).map(Number);
const reachTable = markdownTable(
  ['codec', ...thresholds.flatMap((t) => [`round to ${pct(t, 0)}`, `uploaded until ${pct(t, 0)}`])],
  runs.map((r) => [
    label(r.codec),
    ...thresholds.flatMap((t) => {
      const at = roundsTo(r, t);
      return at === null ? [reachText(r, t), '-'] : [String(at), mb(cumulativeBytes(r)[r.rounds.findIndex((p) => p.round === at)])];
    }),
  ]),
);

const chart = renderAccuracyChart({
  title: 'Update compression: test accuracy by round',
  subtitle: `IID, ${values.clients} devices, ${values['clients-per-round']}/round, E=1, B=10; upload per report: ${runs.map((r) => `${label(r.codec)} ${Math.round(perReport(r) / 1e3)} kB`).join(', ')}`,
  series: runs.map((r) => ({ name: label(r.codec), points: accuracyPoints(r) })),
});

/** Accuracy against the MB uploaded so far: where the codecs' curves cross is what a byte buys. */
const bytesChart = renderAccuracyChart({
  title: 'Update compression: test accuracy against bytes uploaded',
  subtitle: `IID, ${values.clients} devices, ${values['clients-per-round']}/round, E=1, B=10; x: MB of updates received since round 1 (log scale)`,
  xLabel: 'MB uploaded (cumulative, log scale)',
  xScale: 'log10',
  xUnit: 'MB',
  series: runs.map((r) => {
    const bytes = cumulativeBytes(r);
    return { name: label(r.codec), points: r.rounds.flatMap((p, i) => (p.accuracy === null ? [] : [{ x: bytes[i] / 1e6, y: p.accuracy }])) };
  }),
});

const md = `# Update compression: bytes uploaded and accuracy

Generated by \`${replot ? `npx tsx bench/exp-compression.ts --rounds ${values.rounds}` : commandLine('bench/exp-compression.ts')}\`${replot ? ` (table and chart re-derived from the saved runs with \`--replot ${replot}\`)` : ''} on ${new Date().toISOString().slice(0, 10)}.

Setting: IID MNIST, 2NN MLP (199,210 parameters), ${values.clients} devices, ${values['clients-per-round']} per round (no
over-selection), E=1, B=10, client SGD lr 0.1, seed ${values.seed}, ${values.rounds} rounds per codec, central evaluation on
the 10,000 test images. Bytes are the encoded update payloads the coordinator received in each committed round (the
plan's codec; downloads of the global model are f32 in every run and not counted). int8 and topk go through the
device's error feedback (what one round drops is added to the next delta).

${table}
Rounds and upload needed to reach an accuracy (bytes summed over every round up to and including the one that reached it):

${reachTable}
Charts: [accuracy by round](compression.svg), [accuracy against MB uploaded](compression-bytes.svg). Per-round series: [compression.json](compression.json).
`;

const files = await writeExperiment('compression', md, { 'compression.svg': chart, 'compression-bytes.svg': bytesChart }, runs, values, values.out);
console.log('\n' + table + '\n' + reachTable);
console.log(`Wrote ${files.join(', ')}`);
process.exit(0);
