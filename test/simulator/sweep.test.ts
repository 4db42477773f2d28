import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CliUsageError, type SimOptions } from '../../simulator/src/cli-options.js';
import type { SimulationHooks } from '../../simulator/src/simulation.js';
import { parseGrid, validateConfigs } from '../../simulator/src/sweep/grid.js';
import { metricValue, parseMetric, spread } from '../../simulator/src/sweep/metric.js';
import { runSweep } from '../../simulator/src/sweep/sweep-runner.js';
import { summarizeSweep } from '../../simulator/src/sweep/sweep-report.js';

/** flotilla-sim sweep: grid expansion and bad grids, the early-stopping rules, and a real sweep through the CLI. */
const BIN = fileURLToPath(new URL('../../scripts/dev/flotilla-sim.mjs', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('sweep grid', () => {
  it('expands arrays (and strategy-params arrays) into the Cartesian product, each a valid command line', () => {
    const { base, configs } = parseGrid(
      JSON.stringify({
        base: { partition: 'shards', clients: 20 },
        grid: [
          { strategy: 'fedavgm', lr: [0.05, 0.1], 'strategy-params': { serverLearningRate: 1, serverMomentum: [0.5, 0.9] } },
          { strategy: 'scaffold' },
        ],
      }),
    );
    expect(base).toEqual(['--partition=shards', '--clients=20']);
    expect(configs.map((c) => c.label)).toEqual([
      'fedavgm lr=0.05 serverLearningRate=1 serverMomentum=0.5',
      'fedavgm lr=0.05 serverLearningRate=1 serverMomentum=0.9',
      'fedavgm lr=0.1 serverLearningRate=1 serverMomentum=0.5',
      'fedavgm lr=0.1 serverLearningRate=1 serverMomentum=0.9',
      'scaffold',
    ]);
    expect(configs[1].args).toEqual(['--strategy=fedavgm', '--lr=0.05', '--strategy-params={"serverLearningRate":1,"serverMomentum":0.9}']);
    validateConfigs(base, configs);
    expect(parseGrid('[{"strategy":"fedavg"}]').configs).toHaveLength(1); // a bare array is the grid
  });

  it('refuses bad grids and bad metrics with the cause named', () => {
    const bad: Array<[string, RegExp]> = [
      ['{', /not valid JSON/],
      ['[]', /grid/],
      ['[{"learning-rate": 0.1}]', /unknown flag "learning-rate"/],
      ['[{"seed": [1, 2]}]', /"seed" is set by the sweep itself/],
      ['[{"strategy": "fedavg"}, {"strategy": "fedavg"}]', /repeats the configuration "fedavg"/],
      ['[{"strategy-params": [1]}]', /strategy-params/],
    ];
    for (const [text, why] of bad) expect(() => parseGrid(text), text).toThrow(why);
    const { base, configs } = parseGrid('[{"lr": [0.1, -1]}]');
    expect(() => validateConfigs(base, configs)).toThrow(/configuration "fedavg lr=-1": --lr must be > 0/);
    for (const m of ['rounds-to:1.5', 'rounds-to:0', 'rounds-to', 'accuracy']) expect(() => parseMetric(m), m).toThrow(CliUsageError);
    expect(parseMetric('rounds-to:0.97')).toEqual({ kind: 'rounds-to', target: 0.97 });
  });

  it('metric values and spread', () => {
    const pts = [0.5, 0.8, 0.96, 0.97, 0.95].map((accuracy, i) => ({ round: i + 1, accuracy }));
    expect(metricValue(parseMetric('rounds-to:0.97'), pts)).toBe(4);
    expect(metricValue(parseMetric('rounds-to:0.99'), pts)).toBeNull();
    expect(metricValue(parseMetric('best-accuracy'), pts)).toBe(0.97);
    expect(metricValue(parseMetric('final-accuracy'), pts)).toBe(0.95);
    const s = spread([10, 20, 30])!;
    expect([s.mean, s.std, s.min, s.max]).toEqual([20, 10, 10, 30]);
  });
});

/**
 * The scheduling and early-stopping rules, with a scripted stand-in for runSimulation that replays
 * fixed accuracy curves (no training): what is under test here is only which runs the sweep stops
 * or skips. The real runner is exercised by the CLI test below.
 */
describe('sweep early stopping (scripted curves)', () => {
  const curve = (n: number, f: (r: number) => number) => Array.from({ length: n }, (_, i) => f(i + 1));
  async function scripted(curves: Record<string, number[]>, seeds: number[], extra: { stopFactor?: number; medianFrom?: number } = {}) {
    const { base, configs } = parseGrid(JSON.stringify(Object.keys(curves).map((s) => ({ strategy: s }))));
    const run = async (o: SimOptions, hooks: SimulationHooks) => {
      const accs = curves[o.strategy];
      const rounds = [];
      for (const [i, accuracy] of accs.entries()) {
        if (hooks.signal?.aborted || i + 1 > o.rounds) break;
        const row = { round: i + 1, accuracy, loss: 1, participants: 1, failed: false, durationMs: 1, bytesUp: 10, bytesDown: 10, elapsedMs: i + 1 };
        rounds.push(row);
        hooks.onRound?.(row);
        if (accuracy >= o.targetAccuracy) break;
        await new Promise((r) => setTimeout(r, 1));
      }
      return { results: { config: {}, rounds } };
    };
    const runs = await runSweep({ base: [...base, '--rounds', '100'], configs, seeds, metric: parseMetric('rounds-to:0.9'), parallel: 1, workersPerRun: 1, stopFactor: extra.stopFactor ?? 0, medianFrom: extra.medianFrom ?? 0, run });
    return { runs, configs };
  }

  it('budget rule: stops a run past F x the best finished rounds of its seed, then skips that config on later seeds', async () => {
    const { runs, configs } = await scripted(
      {
        fedavg: curve(100, (r) => (r >= 10 ? 0.95 : 0.5)), // reaches 0.9 at round 10
        fedprox: curve(100, (r) => (r >= 50 ? 0.95 : 0.5)), // would need 50
        scaffold: curve(100, (r) => (r >= 15 ? 0.95 : 0.5)), // 15: within 2x
      },
      [1, 2],
      { stopFactor: 2 },
    );
    const by = (c: string, s: number) => runs.find((r) => r.config === c && r.seed === s)!;
    expect(by('fedavg', 1).value).toBe(10);
    expect(by('scaffold', 1).value).toBe(15);
    expect(by('fedprox', 1).status).toBe('stopped');
    expect(by('fedprox', 1).points.at(-1)!.round).toBe(21); // the first round past 2 x 10
    expect(by('fedprox', 2).status).toBe('skipped');
    const rows = summarizeSweep(configs, runs, parseMetric('rounds-to:0.9'));
    expect(rows.map((r) => [r.config.label, r.reached, r.ran])).toEqual([
      ['fedavg', 2, 2],
      ['scaffold', 2, 2],
      ['fedprox', 0, 1],
    ]);
  });

  it('median rule: stops a run whose best accuracy so far is below the median of the others of its seed', async () => {
    const { runs } = await scripted(
      {
        fedavg: curve(40, (r) => Math.min(0.85, 0.5 + r * 0.01)),
        fedadam: curve(40, (r) => Math.min(0.85, 0.55 + r * 0.01)),
        fedprox: curve(40, () => 0.3), // hopeless
      },
      [1],
      { medianFrom: 5 },
    );
    const prox = runs.find((r) => r.config === 'fedprox')!;
    expect(prox.status).toBe('stopped');
    expect(prox.points.at(-1)!.round).toBe(5);
    expect(prox.note).toMatch(/below the median/);
    expect(runs.filter((r) => r.status === 'done').map((r) => r.config).sort()).toEqual(['fedadam', 'fedavg']);
  });
});

describe('flotilla-sim sweep (real runs)', () => {
  it('runs a grid over two seeds with real devices and writes the sorted table and charts', async () => {
    const out = await mkdtemp(join(tmpdir(), 'flotilla-sweep-'));
    dirs.push(out);
    const grid = join(out, 'grid.json');
    // As small as a real run gets (2 devices of 100 images, 2 rounds): this checks the plumbing, not learning.
    await writeFile(grid, JSON.stringify({ base: { clients: 2, 'clients-per-round': 2, 'train-limit': 200, 'test-limit': 100, rounds: 2, workers: 1 }, grid: [{ strategy: 'fedavg' }, { strategy: 'scaffold' }] }));
    const r = spawnSync(process.execPath, [BIN, 'sweep', '--grid', `@${grid}`, '--metric', 'best-accuracy', '--seeds', '1,2', '--parallel', '2', '--out', out], { encoding: 'utf8', timeout: 1_500_000 });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const md = await readFile(join(out, 'sweep.md'), 'utf8');
    expect(md).toMatch(/\| 1 \| (fedavg|scaffold) \|/);
    expect(md).toContain('2/2');
    const json = JSON.parse(await readFile(join(out, 'sweep.json'), 'utf8'));
    expect(json.runs).toHaveLength(4);
    for (const run of json.runs) {
      expect(run.status).toBe('done');
      expect(run.points.map((p: { round: number }) => p.round)).toEqual([1, 2]);
    }
    // SCAFFOLD uploads the control delta beside the model delta: twice FedAvg's bytes.
    const up = (s: string) => json.runs.find((x: { strategy: string }) => x.strategy === s).bytesUp;
    expect(up('scaffold')).toBe(2 * up('fedavg'));
    // Sorted by the mean, best first.
    const means = json.ranking.map((x: { stats: { mean: number } }) => x.stats.mean);
    expect(means[0]).toBeGreaterThanOrEqual(means[1]);
    expect(await readFile(join(out, 'sweep.svg'), 'utf8')).toContain('<svg');
    expect(await readFile(join(out, 'sweep-curves.svg'), 'utf8')).toContain('<svg');

    const bad = spawnSync(process.execPath, [BIN, 'sweep', '--grid', '[{"lr":"fast"}]'], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--lr must be a number');
  }, 1_600_000);
});
