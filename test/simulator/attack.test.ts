import { describe, expect, it } from 'vitest';
import { applyAttack, chooseAttackers, parseAttack } from '../../simulator/src/attack.js';
import { CliUsageError, parseCliOptions, type SimOptions } from '../../simulator/src/cli-options.js';
import { createRng } from '../../simulator/src/rng.js';
import { runSimulation } from '../../simulator/src/simulation.js';

describe('simulator model-poisoning fault (--attack)', () => {
  it('parses scale and noise attacks and refuses malformed ones', () => {
    expect(parseAttack('scale:-10:0.1')).toEqual({ kind: 'scale', factor: -10, fraction: 0.1 });
    expect(parseAttack('noise:0.5:0.2')).toEqual({ kind: 'noise', std: 0.5, fraction: 0.2 });
    for (const bad of ['scale:-10', 'scale:x:0.1', 'flip:1:0.1', 'scale:-10:0', 'scale:-10:1', 'noise:0:0.1', 'noise:-1:0.1', 'scale::0.1']) {
      expect(() => parseAttack(bad), bad).toThrow(RangeError);
    }
  });

  it('is a flotilla-sim flag, validated with the other flags', () => {
    const o = parseCliOptions(['--attack', 'scale:-10:0.1']) as SimOptions;
    expect(o.attack).toEqual({ kind: 'scale', factor: -10, fraction: 0.1 });
    expect((parseCliOptions([]) as SimOptions).attack).toBeUndefined();
    expect(() => parseCliOptions(['--attack', 'noise:1'])).toThrow(CliUsageError);
    expect(() => parseCliOptions(['--attack', 'noise:1'])).toThrow(/--attack must look like/);
  });

  it('chooses exactly round(fraction * devices) attackers, the same ones for the same seed', () => {
    const a = chooseAttackers(100, 0.1, 7);
    expect(a.size).toBe(10);
    expect([...a].every((i) => Number.isInteger(i) && i >= 0 && i < 100)).toBe(true);
    expect([...chooseAttackers(100, 0.1, 7)]).toEqual([...a]);
    expect([...chooseAttackers(100, 0.1, 8)]).not.toEqual([...a]);
    expect(chooseAttackers(5, 0.01, 1).size).toBe(1); // at least one
  });

  it('scales the delta, or replaces it by Gaussian noise of the given std', () => {
    const d = Float32Array.from([1, -2, 0.5]);
    expect(Array.from(applyAttack(d, { kind: 'scale', factor: -10, fraction: 0.1 }, createRng(1)))).toEqual([-10, 20, -5]);
    const n = applyAttack(new Float32Array(20000).fill(3), { kind: 'noise', std: 0.5, fraction: 0.1 }, createRng(1));
    const mean = n.reduce((s, v) => s + v, 0) / n.length;
    const std = Math.sqrt(n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(std).toBeGreaterThan(0.48);
    expect(std).toBeLessThan(0.52);
  });

  it('makes the chosen devices send poisoned updates in a real run, and FedAvg suffers from it', async () => {
    const args = ['--train-limit', '1200', '--test-limit', '1000', '--workers', '2', '--quiet', '--clients', '6', '--clients-per-round', '6', '--rounds', '2', '--seed', '3'];
    const quiet = { progress: { round() {}, log() {}, stop() {} }, noFiles: true, plan: { overSelect: 1 } };
    const clean = await runSimulation(parseCliOptions(args) as SimOptions, quiet);
    const poisoned = await runSimulation(parseCliOptions([...args, '--attack', 'scale:-20:0.2']) as SimOptions, quiet);
    expect(clean.pool.attacks).toBe(0);
    // one attacker of 6 (round(0.2 * 6) = 1), selected in both rounds since all 6 take part
    expect(poisoned.pool.attacks).toBe(2);
    expect(poisoned.results.summary!.roundsCommitted).toBe(2);
    expect(poisoned.results.summary!.finalAccuracy!).toBeLessThan(clean.results.summary!.finalAccuracy! - 0.1);
  });
});
