/**
 * Bytes and state of the drift-correcting strategies (issue 20, part 2), measured on real runs:
 * for FedAvg (the baseline), SCAFFOLD and FedDyn, each with the f32 and top-k codecs, a short
 * simulation (in-process coordinator, real SDK devices in a worker thread, the 2NN MLP of 199,210
 * weights) whose devices keep their state as files (--device-state), then:
 *   - upload and download bytes per device and round (the coordinator's round records), and the
 *     ratio to FedAvg with the same codec, measured in the same run;
 *   - per-device state: bytes of the state files each device left (SCAFFOLD's c_i, FedDyn's h_i,
 *     error-feedback residuals);
 *   - server state: bytes of the strategy's exported state as stored with each commit.
 *
 *   npx tsx bench/drift-state.ts [--rounds 2] [--out .bench-out/drift-state.json]
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { TaskPlanSchema } from '@flotilla/protocol';
import { createStrategy } from '../server/src/fl/strategies/index.js';
import { parseCliOptions, type SimOptions } from '../simulator/src/cli-options.js';
import { createProgress } from '../simulator/src/progress.js';
import { runSimulation } from '../simulator/src/simulation.js';
import type { RoundRecord } from '@flotilla/server';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, out: { type: 'string', default: '.bench-out/drift-state.json' } } });
const ROUNDS = Number(values.rounds);
const PER_ROUND = 2;

const CASES = [
  { strategy: 'fedavg', params: {} },
  { strategy: 'scaffold', params: {} },
  { strategy: 'feddyn', params: { alpha: 0.01 } },
];
const CODECS: Array<{ codec: string; extra: Record<string, unknown> }> = [
  { codec: 'f32', extra: {} },
  { codec: 'topk', extra: { topkFraction: 0.01 } },
];

interface Row {
  strategy: string;
  codec: string;
  upPerReport: number;
  downPerDevice: number;
  deviceStateBytes: number;
  serverStateBytes: number;
}

async function dirBytes(dir: string): Promise<{ total: number; files: number }> {
  let total = 0;
  // Committed values only: a temporary file of a write cut short by the end of the run is not state.
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.bin'));
  for (const n of names) total += (await stat(join(dir, n))).size;
  return { total, files: names.length };
}

const rows: Row[] = [];
for (const { codec, extra } of CODECS) {
  for (const c of CASES) {
    const stateDir = await mkdtemp(join(tmpdir(), 'flotilla-drift-state-'));
    try {
      const o = parseCliOptions([
        '--clients', String(PER_ROUND), '--clients-per-round', String(PER_ROUND), '--rounds', String(ROUNDS), '--train-limit', '400', '--test-limit', '200',
        '--workers', '1', '--eval-clients', '0', '--strategy', c.strategy, '--strategy-params', JSON.stringify(c.params), '--device-state', stateDir, '--quiet',
      ]) as SimOptions;
      const records: RoundRecord[] = [];
      await runSimulation(o, { noFiles: true, progress: createProgress({ total: ROUNDS, quiet: true }), plan: { codec: codec as 'f32', ...extra, overSelect: 1 }, onRecord: (r) => void records.push(r) });
      const done = records.filter((r) => r.state === 'done');
      const reports = done.reduce((a, r) => a + r.reported.length, 0);
      const selected = done.reduce((a, r) => a + r.selected.length, 0);
      const files = await dirBytes(stateDir);
      const s = createStrategy(TaskPlanSchema.parse({ clientsPerRound: PER_ROUND, codec, ...extra, strategy: { name: c.strategy, params: c.params } }));
      // Server state after one round of the 199,210-weight model, as stored with a commit (JSON).
      const n = 199_210;
      s.configureFit(1, ['a', 'b'], () => 0.5);
      const agg = s.beginFit(1, n);
      const delta = new Float32Array(n).fill(1e-3);
      agg.add({ clientId: 'a', numExamples: 1, delta, metrics: {}, ...(agg.requiresControl ? { control: delta } : {}) });
      s.aggregateFit(1, agg, [], new Float32Array(n));
      const exported = s.exportState?.();
      rows.push({
        strategy: c.strategy,
        codec,
        upPerReport: done.reduce((a, r) => a + r.bytesUp, 0) / reports,
        downPerDevice: done.reduce((a, r) => a + r.bytesDown, 0) / selected,
        deviceStateBytes: files.total / PER_ROUND,
        serverStateBytes: exported === undefined ? 0 : JSON.stringify(exported).length,
      });
      console.log(`${c.strategy} ${codec}: ${done.length} rounds, ${files.files} state files (${(await readdir(stateDir)).join(', ')})`);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  }
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
console.log('\n| strategy | codec | upload per report | vs FedAvg | download per device | vs FedAvg | per-device state | server state |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const base = rows.find((x) => x.strategy === 'fedavg' && x.codec === r.codec)!;
  console.log(`| ${r.strategy} | ${r.codec} | ${kb(r.upPerReport)} | ${(r.upPerReport / base.upPerReport).toFixed(2)}x | ${kb(r.downPerDevice)} | ${(r.downPerDevice / base.downPerDevice).toFixed(2)}x | ${kb(r.deviceStateBytes)} | ${kb(r.serverStateBytes)} |`);
}
await writeFile(values.out!, JSON.stringify({ rounds: ROUNDS, rows }, null, 1) + '\n').catch(() => undefined);
process.exit(0);
