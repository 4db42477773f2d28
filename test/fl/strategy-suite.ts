import { describe, expect, it } from 'vitest';
import { TaskPlanSchema, type TaskPlanInput } from '@flotilla/protocol';
import { createRng } from '../../server/src/fl/rng.js';
import { selectionSize } from '../../server/src/fl/selection.js';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import type { FitFailure, FitOutcome, Strategy } from '../../server/src/fl/strategy.js';

/**
 * The shared strategy suite (strategy.ts contract): every registered strategy runs it, under one
 * or more param variants. `kind` says what "equal updates from every client" must give:
 *   mean, robust: exactly global + update (averaging and robust aggregators agree on consensus);
 *   adaptive: a step with the update's sign in every coordinate (server optimizers rescale it);
 *   noisy: global + update plus zero-mean Gaussian noise of the documented std.
 */
export interface StrategyVariant {
  label: string;
  params: Record<string, unknown>;
  plan?: Partial<TaskPlanInput>;
  kind: 'mean' | 'robust' | 'adaptive' | 'noisy';
  streaming: boolean;
  /** noisy only: the std of the noise added per coordinate, for the identity check. */
  noiseStd?: number;
}

export const CLIENTS = 5;

export function planFor(name: string, v: Pick<StrategyVariant, 'params' | 'plan'>) {
  return TaskPlanSchema.parse({ clientsPerRound: CLIENTS, overSelect: 1, evalClientsPerRound: 2, ...v.plan, strategy: { name, params: v.params } });
}

export interface Update {
  delta: Float32Array;
  numExamples: number;
  metrics?: Record<string, number>;
}

/** One round: configure (so strategies can note the sampling rate), fold copies of the updates, aggregate. */
export function runRound(s: Strategy, round: number, global: Float32Array, updates: readonly Update[], failures: readonly FitFailure[] = []): FitOutcome {
  s.configureFit(round, Array.from({ length: 20 }, (_, i) => `d${i}`), createRng(round));
  const agg = s.beginFit(round, global.length);
  updates.forEach((u, i) => agg.add({ clientId: `d${i}`, numExamples: u.numExamples, delta: u.delta.slice(), metrics: u.metrics ?? {} }));
  return s.aggregateFit(round, agg, failures, global);
}

export function randomVector(n: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => scale * (rng() * 2 - 1));
}

function randomUpdates(n: number, seed: number): Update[] {
  return Array.from({ length: CLIENTS }, (_, i) => ({ delta: randomVector(n, seed * 100 + i, 0.1), numExamples: 10 + 7 * i, metrics: { loss: 1 + i } }));
}

export function strategySuite(name: string, v: StrategyVariant): void {
  describe(`strategy ${name} [${v.label}] (shared suite)`, () => {
    const make = () => createStrategy(planFor(name, v));
    const n = 37;

    it('is registered under its name and says whether it streams', () => {
      const s = make();
      expect(s.name).toBe(name);
      expect(s.streaming).toBe(v.streaming);
    });

    it('preserves the shape and never mutates the global weights', () => {
      const global = randomVector(n, 1);
      const copy = global.slice();
      const out = runRound(make(), 1, global, randomUpdates(n, 2));
      expect(out.weights).toBeInstanceOf(Float32Array);
      expect(out.weights.length).toBe(n);
      expect(out.weights).not.toBe(global);
      expect(global).toEqual(copy);
      for (const w of out.weights) expect(Number.isFinite(w)).toBe(true);
      expect(out.metrics.participants).toBe(CLIENTS);
      expect(out.metrics.examples).toBe(randomUpdates(n, 2).reduce((a, u) => a + u.numExamples, 0));
      expect(out.metrics.loss).toBeGreaterThan(1);
      expect(out.metrics.loss).toBeLessThan(5);
    });

    it('equal updates from every client give global + update (per kind)', () => {
      const big = v.kind === 'noisy' ? 20000 : n;
      const global = randomVector(big, 3);
      const u = randomVector(big, 4, 0.05);
      const updates = Array.from({ length: CLIENTS }, (_, i) => ({ delta: u, numExamples: 1 + i * 13 }));
      const out = runRound(make(), 1, global, updates);
      if (v.kind === 'mean' || v.kind === 'robust') {
        for (let i = 0; i < big; i++) expect(out.weights[i]).toBeCloseTo(global[i] + u[i], 6);
      } else if (v.kind === 'adaptive') {
        for (let i = 0; i < big; i++) expect(Math.sign(out.weights[i] - global[i])).toBe(Math.sign(u[i]));
      } else {
        let s = 0;
        let s2 = 0;
        for (let i = 0; i < big; i++) {
          const e = out.weights[i] - global[i] - u[i];
          s += e;
          s2 += e * e;
        }
        const mean = s / big;
        const std = Math.sqrt(s2 / big - mean * mean);
        const want = v.noiseStd as number;
        expect(Math.abs(mean)).toBeLessThan((5 * want) / Math.sqrt(big));
        expect(std / want).toBeGreaterThan(0.95);
        expect(std / want).toBeLessThan(1.05);
      }
    });

    it('is deterministic under a seed (selection and aggregate)', () => {
      const available = Array.from({ length: 30 }, (_, i) => `c${i}`);
      const a = make().configureFit(1, available, createRng(9));
      const b = make().configureFit(1, available, createRng(9));
      expect(a).toEqual(b);
      expect(new Set(a).size).toBe(a.length);
      expect(a.length).toBe(selectionSize(CLIENTS, 1));
      for (const id of a) expect(available).toContain(id);
      const global = randomVector(n, 5);
      const s1 = make();
      const s2 = make();
      for (let round = 1; round <= 3; round++) {
        const ups = randomUpdates(n, 10 + round);
        expect(runRound(s1, round, global, ups).weights).toEqual(runRound(s2, round, global, ups).weights);
      }
    });

    it('previews a report against float32 range without changing its state', () => {
      const global = randomVector(n, 8);
      const s1 = make();
      const s2 = make();
      runRound(s1, 1, global, randomUpdates(n, 21));
      runRound(s2, 1, global, randomUpdates(n, 21));
      // The preview says what a round with that report alone would give: weights out of range or not.
      if (s1.previewOutOfRange) {
        for (const [d, g] of [
          [randomVector(n, 3, 0.1), global],
          [new Float32Array(n).fill(3.4e38), new Float32Array(n).fill(1e38)],
          [new Float32Array(n).fill(-3e38), new Float32Array(n).fill(-3e38)],
        ]) {
          const twin = make();
          const state = s1.exportState?.();
          if (state !== undefined) twin.importState?.(JSON.parse(JSON.stringify(state)));
          const alone = runRound(twin, 2, g, [{ delta: d, numExamples: 1 }]).weights;
          expect(s1.previewOutOfRange(d, g) >= 0).toBe(alone.some((x) => !Number.isFinite(x)));
        }
      }
      const ups = randomUpdates(n, 22);
      expect(runRound(s1, 2, global, ups).weights).toEqual(runRound(s2, 2, global, ups).weights);
    });

    it('handles failures without throwing and without changing the aggregate', () => {
      const global = randomVector(n, 6);
      const ups = randomUpdates(n, 7);
      const failures: FitFailure[] = [
        { clientId: 'x1', reason: 'timeout' },
        { clientId: 'x2', reason: 'disconnected' },
      ];
      expect(runRound(make(), 1, global, ups, failures).weights).toEqual(runRound(make(), 1, global, ups).weights);
    });

    it('throws RangeError with no results, or an update of the wrong length', () => {
      const s = make();
      expect(() => s.aggregateFit(1, s.beginFit(1, n), [{ clientId: 'a', reason: 'timeout' }], new Float32Array(n))).toThrow(RangeError);
      const agg = s.beginFit(1, n);
      expect(() => agg.add({ clientId: 'a', numExamples: 1, delta: new Float32Array(n + 1), metrics: {} })).toThrow(RangeError);
    });

    if (!v.streaming) {
      it('bounds what it keeps: at most maxUpdates updates per round', () => {
        const s = make();
        const agg = s.beginFit(1, 4);
        for (let i = 0; i < selectionSize(CLIENTS, 1); i++) agg.add({ clientId: `c${i}`, numExamples: 1, delta: new Float32Array(4), metrics: {} });
        expect(() => agg.add({ clientId: 'extra', numExamples: 1, delta: new Float32Array(4), metrics: {} })).toThrow(RangeError);
      });
    }

    it('resumes from exported state exactly (JSON round trip)', () => {
      const global = randomVector(n, 8);
      const a = make();
      const r1 = runRound(a, 1, global, randomUpdates(n, 21));
      const b = make();
      if (a.exportState) {
        const state = JSON.parse(JSON.stringify(a.exportState()));
        expect(b.importState).toBeTypeOf('function');
        b.importState?.(state);
      }
      const ups = randomUpdates(n, 22);
      expect(runRound(b, 2, r1.weights, ups).weights).toEqual(runRound(a, 2, r1.weights, ups).weights);
    });

    it('aggregates evaluation metrics weighted by examples', () => {
      const s = make();
      expect(s.configureEvaluate(1, ['a', 'b', 'c'], createRng(1)).length).toBe(2);
      const m = s.aggregateEvaluate(
        1,
        [
          { clientId: 'a', numExamples: 1, metrics: { accuracy: 0.5 } },
          { clientId: 'b', numExamples: 3, metrics: { accuracy: 0.9 } },
        ],
        [],
      );
      expect(m.accuracy).toBeCloseTo(0.8, 12);
      expect(s.aggregateEvaluate(1, [], [])).toEqual({});
    });
  });
}
