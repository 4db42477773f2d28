import { describe, expect, it } from 'vitest';
import { TaskPlanSchema } from '@flotilla/protocol';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import { createRng } from '../../server/src/fl/rng.js';
import { decodePartial, encodePartial } from '../../server/src/cluster/partial-codec.js';

/**
 * Hierarchical aggregation (docs/cluster.md): for every mergeable strategy, folding reports on
 * three "nodes" and merging their partials (through the wire codec) into the leader's aggregator
 * gives the same outcome as one aggregator that saw every report.
 */
const N = 257;
const results = Array.from({ length: 9 }, (_, k) => ({
  clientId: `c${k}`,
  numExamples: 3 + k,
  metrics: (k % 2 ? { loss: 1 / (k + 1), acc: k / 10 } : { loss: 1 / (k + 1) }) as Record<string, number>,
  delta: Float32Array.from({ length: N }, (_, i) => Math.sin(k * 13 + i) * (k === 4 ? 5 : 0.1)),
}));
const global = Float32Array.from({ length: N }, (_, i) => Math.cos(i));

const PLANS = [
  { name: 'fedavg' },
  { name: 'fedavgm', params: { serverMomentum: 0.9 } },
  { name: 'fedadam' },
  { name: 'normbounded', params: { maxNorm: 1 } },
  { name: 'dpfedavg', params: { noiseMultiplier: 0.7, clipNorm: 0.5, seed: 7, adaptive: {} } },
];

describe('partials merge like one aggregator', () => {
  for (const strategy of PLANS) {
    it(strategy.name, () => {
      const plan = TaskPlanSchema.parse({ clientsPerRound: 9, overSelect: 1, strategy });
      const one = createStrategy(plan);
      const all = one.beginFit(1, N);
      for (const r of results) all.add({ ...r, delta: Float32Array.from(r.delta) });
      one.configureFit(1, results.map((r) => r.clientId), createRng(1));
      const want = one.aggregateFit(1, all, [], global);

      const leader = createStrategy(plan);
      leader.configureFit(1, results.map((r) => r.clientId), createRng(1));
      const agg = leader.beginFit(1, N);
      for (let node = 0; node < 3; node++) {
        const shard = createStrategy(plan).beginFit(1, N);
        for (const r of results.filter((_, k) => k % 3 === node)) shard.add({ ...r, delta: Float32Array.from(r.delta) });
        if (node === 0) {
          for (const r of results.filter((_, k) => k % 3 === 0)) agg.add({ ...r, delta: Float32Array.from(r.delta) });
          continue; // the leader's own shard is its aggregator
        }
        agg.mergePartial!(decodePartial(encodePartial(shard.exportPartial!())));
      }
      expect(agg.count).toBe(9);
      expect(agg.totalExamples).toBe(all.totalExamples);
      const got = leader.aggregateFit(1, agg, [], global);
      for (let i = 0; i < N; i++) expect(got.weights[i]).toBeCloseTo(want.weights[i], 5);
      for (const [k, v] of Object.entries(want.metrics)) expect(got.metrics[k], k).toBeCloseTo(v, 6);
    });
  }
  it('an empty shard merges as nothing', () => {
    const plan = TaskPlanSchema.parse({ clientsPerRound: 2 });
    const s = createStrategy(plan);
    const agg = s.beginFit(1, N);
    agg.add({ ...results[0], delta: Float32Array.from(results[0].delta) });
    agg.mergePartial!(decodePartial(encodePartial(createStrategy(plan).beginFit(1, N).exportPartial!())));
    expect(agg.count).toBe(1);
  });
});
