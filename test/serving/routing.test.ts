import { describe, expect, it } from 'vitest';
import { createRng } from '../../server/src/fl/rng.js';
import { Bandit, sampleBeta } from '../../server/src/serving/bandit.js';
import { driftSummary, StatsAccumulator } from '../../server/src/serving/drift.js';
import { hashFraction, sampledId } from '../../server/src/serving/payload-log.js';
import { DeploymentRuntime } from '../../server/src/serving/router.js';
import type { DeploymentRecord } from '../../server/src/store/records.js';

const seeded = createRng;

/** Bernoulli arms with these success rates; returns the pulls per arm after `n` rounds. */
function play(alg: 'thompson' | 'ucb1', rates: number[], n: number, seed = 7) {
  const rng = seeded(seed);
  const b = new Bandit(alg, rates.map((_, i) => String(i)), [], rng);
  for (let t = 0; t < n; t++) {
    const i = b.choose();
    b.reward(i, rng() < rates[i] ? 1 : 0);
  }
  return b;
}

describe('bandits', () => {
  it('Beta sampler has the right mean', () => {
    const rng = seeded(1);
    let s = 0;
    for (let i = 0; i < 20000; i++) s += sampleBeta(2, 6, rng);
    expect(s / 20000).toBeCloseTo(0.25, 2);
    let small = 0;
    for (let i = 0; i < 20000; i++) small += sampleBeta(0.5, 0.5, rng);
    expect(small / 20000).toBeCloseTo(0.5, 1);
  });

  it('Thompson sampling sends most traffic to the best arm and its posterior tracks the rate', () => {
    const b = play('thompson', [0.2, 0.5, 0.8], 3000);
    const pulls = b.arms.map((a) => a.pulls);
    expect(pulls[2] / 3000).toBeGreaterThan(0.85);
    const s = b.summary();
    expect(s[2].posteriorMean).toBeGreaterThan(0.75);
    expect(s[2].posteriorMean).toBeLessThan(0.85);
    expect(s[2].alpha + s[2].beta).toBeCloseTo(2 + pulls[2], 5);
  });

  it('UCB1 tries every arm first, then favours the best one', () => {
    const rng = seeded(3);
    const b = new Bandit('ucb1', ['a', 'b', 'c'], [], rng);
    // Delayed feedback: three choices before any reward still cover all arms.
    expect(new Set([b.choose(), b.choose(), b.choose()]).size).toBe(3);
    const played = play('ucb1', [0.3, 0.7], 3000);
    expect(played.arms[1].pulls / 3000).toBeGreaterThan(0.8);
    expect(played.summary()[1].ucb).toBeGreaterThan(0.7);
  });

  it('restores saved arms by key and starts new ones from the prior', () => {
    const b = new Bandit('thompson', ['1', '3'], [{ key: '1', alpha: 5, beta: 2, pulls: 6, rewards: 5, rewardSum: 4 }]);
    expect(b.arms[0]).toMatchObject({ key: '1', alpha: 5, beta: 2 });
    expect(b.arms[1]).toMatchObject({ key: '3', alpha: 1, beta: 1, pulls: 0 });
  });
});

const dep = (routing: DeploymentRecord['routing']): DeploymentRecord => ({ name: 'd', model: 'm', routing, createdAt: 0, updatedAt: 0 });

describe('routing', () => {
  it('splits by weight', () => {
    const rt = new DeploymentRuntime(dep({ mode: 'split', targets: [{ ref: '1', weight: 1 }, { ref: '2', weight: 3 }] }), seeded(11));
    const counts = [0, 0];
    for (let i = 0; i < 8000; i++) counts[rt.choose(undefined)]++;
    expect(counts[1] / 8000).toBeCloseTo(0.75, 1);
  });

  it('sticky split sends a key to the same target every time, and keys spread by weight', () => {
    const rt = new DeploymentRuntime(dep({ mode: 'split', sticky: true, targets: [{ ref: '1', weight: 1 }, { ref: '2', weight: 1 }] }));
    for (const key of ['alice', 'bob', 'carol']) {
      const first = rt.choose(key);
      for (let i = 0; i < 20; i++) expect(rt.choose(key)).toBe(first);
    }
    let second = 0;
    for (let i = 0; i < 4000; i++) second += rt.choose(`user-${i}`);
    expect(second / 4000).toBeCloseTo(0.5, 1);
  });

  it('shadows the configured percentage of request ids, deterministically', () => {
    const rt = new DeploymentRuntime(dep({ mode: 'shadow', primary: { ref: '1' }, shadow: { ref: '2' }, percent: 25 }));
    let mirrored = 0;
    for (let i = 0; i < 4000; i++) if (rt.shadowFor(`r${i}`)) mirrored++;
    expect(mirrored / 4000).toBeCloseTo(0.25, 1);
    expect(rt.shadowFor('fixed')).toEqual(rt.shadowFor('fixed'));
    expect(rt.choose(undefined)).toBe(0);
  });
});

describe('payload sampling and drift statistics', () => {
  it('samples a request id always or never, at the configured rate', () => {
    let n = 0;
    for (let i = 0; i < 20000; i++) if (sampledId(`req-${i}`, 0.01)) n++;
    expect(n / 20000).toBeGreaterThan(0.007);
    expect(n / 20000).toBeLessThan(0.013);
    for (let i = 0; i < 100; i++) expect(sampledId(`id-${i}`, 0.3)).toBe(sampledId(`id-${i}`, 0.3));
    expect(sampledId('x', 0)).toBe(false);
    expect(sampledId('x', 1)).toBe(true);
    expect(hashFraction('a')).toBeGreaterThanOrEqual(0);
  });

  it('Welford statistics and the drift summary flag shifted features only', () => {
    const rng = seeded(5);
    const ref = new StatsAccumulator(4);
    const same = new StatsAccumulator(4);
    const shifted = new StatsAccumulator(4);
    for (let i = 0; i < 2000; i++) {
      const row = [rng(), rng() * 2, 5, rng() - 0.5];
      ref.add(row);
      same.add([rng(), rng() * 2, 5, rng() - 0.5]);
      shifted.add([rng() + 0.5, rng() * 2, 5, rng() - 0.5]);
    }
    const r = ref.stats();
    expect(r.mean[0]).toBeCloseTo(0.5, 1);
    expect(r.variance[0]).toBeCloseTo(1 / 12, 2);
    expect(r.variance[2]).toBeCloseTo(0, 10);
    expect(driftSummary(r, same.stats()).status).toBe('ok');
    const d = driftSummary(r, shifted.stats());
    expect(d.driftedFeatures).toBe(1);
    expect(d.top[0].feature).toBe(0);
    expect(d.top[0].shift).toBeGreaterThan(1);
    expect(d.status).toBe('drift');
  });
});
