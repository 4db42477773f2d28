import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliUsageError, parseCliOptions, type SimOptions } from '../../simulator/src/cli-options.js';
import { drawSpeeds, holdMs, parseDeviceSpeed } from '../../simulator/src/device-speed.js';
import { buildDevices, taskPlan } from '../../simulator/src/simulation.js';
import { runSimulation } from '../../simulator/src/simulation.js';

/**
 * flotilla-sim --mode async (docs/async.md): the plan it builds, seeded device speeds that are the
 * same fleet for a sync and an async run, and an end-to-end async run (in-process coordinator, SDK
 * devices in 2 workers, MNIST subset) that writes accuracy against model steps and wall-clock time.
 */
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function opts(args: string[]): SimOptions {
  const o = parseCliOptions(['--train-limit', '1200', '--test-limit', '500', '--workers', '2', '--quiet', ...args]);
  if (o === 'help') throw new Error('help');
  return o;
}

describe('flotilla-sim --mode async', () => {
  it('builds an async plan without sync fields, and a sync one without async fields', () => {
    const a = taskPlan(opts(['--mode', 'async', '--clients', '6', '--concurrency', '4', '--buffer-size', '2', '--staleness', 'hinge:5:2', '--max-staleness', '3', '--publish-every', '2', '--server-lr', '0.8']));
    expect(a).toMatchObject({ mode: 'async', concurrency: 4, bufferSize: 2, maxStaleness: 3, publishEvery: 2, serverLearningRate: 0.8, stalenessWeighting: { kind: 'hinge', a: 5, b: 2 } });
    expect(a.clientsPerRound).toBeUndefined();
    const s = taskPlan(opts(['--clients', '6', '--clients-per-round', '3']));
    expect(s.clientsPerRound).toBe(3);
    expect(s.mode).toBeUndefined();
    expect('concurrency' in s).toBe(false);
    expect(() => opts(['--mode', 'async', '--clients', '3', '--concurrency', '4'])).toThrow(CliUsageError);
    expect(() => opts(['--staleness', 'poly'])).toThrow(/--staleness/);
    expect(() => opts(['--device-speed', 'lognormal:0'])).toThrow(/lognormal:MU:SIGMA/);
  });

  it('draws the same speed per device for sync and async runs of a seed, lognormal around exp(MU)', () => {
    const sync = buildDevices(opts(['--clients', '40', '--device-speed', 'lognormal:0:1', '--seed', '3']), { partitionLabels: new Uint8Array(1200).map((_, i) => i % 10), labels: 'classIds', test: { x: new Float32Array(0), y: new Uint8Array(0), n: 0 } } as never);
    const async = buildDevices(opts(['--mode', 'async', '--clients', '40', '--device-speed', 'lognormal:0:1', '--seed', '3']), { partitionLabels: new Uint8Array(1200).map((_, i) => i % 10), labels: 'classIds', test: { x: new Float32Array(0), y: new Uint8Array(0), n: 0 } } as never);
    expect(sync.map((d) => d.speed)).toEqual(async.map((d) => d.speed));
    const s = drawSpeeds(2000, parseDeviceSpeed('lognormal:0.5:0.8'), 9);
    const logs = s.map(Math.log).sort((a, b) => a - b);
    expect(logs[1000]).toBeCloseTo(0.5, 1); // median of log m = MU
    expect(drawSpeeds(5, parseDeviceSpeed('lognormal:0:1'), 4)).not.toEqual(drawSpeeds(5, parseDeviceSpeed('lognormal:0:1'), 5));
    // A device with multiplier 3 that trained 200 ms waits 400 more (measured time), or 3 x nominal - 200.
    expect(holdMs(3, 1000, 1200, undefined)).toBe(400);
    expect(holdMs(3, 1000, 1200, 1000)).toBe(2800);
    expect(holdMs(0.5, 1000, 1200, undefined)).toBe(0);
  });

  it('runs an async FedBuff task end to end and writes accuracy against model steps and wall-clock time', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'flotilla-sim-async-')), 'run');
    dirs.push(join(out, '..'));
    const r = await runSimulation(opts(['--mode', 'async', '--clients', '6', '--concurrency', '4', '--buffer-size', '2', '--rounds', '4', '--device-speed', 'lognormal:0:0.5', '--out', out, '--eval-clients', '0']), { progress: { round() {}, log() {}, stop() {} } });
    const steps = r.results.rounds;
    expect(steps.map((x) => x.round)).toEqual([1, 2, 3, 4]);
    expect(steps.every((x) => !x.failed && x.participants === 2 && x.accuracy! > 0.15)).toBe(true);
    expect(steps.map((x) => x.elapsedMs)).toEqual([...steps.map((x) => x.elapsedMs)].sort((a, b) => a - b));
    expect(r.results.summary).toMatchObject({ roundsCommitted: 4, stopReason: 'step cap 4 reached' });
    const time = await readFile(r.files!.svgTime, 'utf8');
    expect(time).toContain('Wall-clock seconds since training started');
    expect(await readFile(r.files!.svg, 'utf8')).toContain('>Model step</text>');
  }, 180_000);
});
