import { describe, expect, it } from 'vitest';
import { AppError, TaskPlanSchema, type DriftCorrection } from '@flotilla/protocol';
import { f32Codec } from '@flotilla/protocol';
import { MemoryStateStore, DeviceVectors } from '@flotilla/client';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import { encodeServerControl } from '../../server/src/coordinator/control-variates.js';
import { beginDrift } from '../../client-sdk/src/drift/drift-state.js';
import type { Strategy } from '../../server/src/fl/strategy.js';
import { runRound } from './strategy-suite.js';

const plan = (name: string, params: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  TaskPlanSchema.parse({ clientsPerRound: 3, overSelect: 1, learningRate: 0.1, ...extra, strategy: { name, params } });

describe('SCAFFOLD and FedDyn server updates (exact arithmetic)', () => {
  it('SCAFFOLD: x += eta_g * D (weighted), c += |S|/N * mean(dc) (unweighted), c resumes from state', () => {
    const s = createStrategy(plan('scaffold', { serverLearningRate: 0.5, populationSize: 10 }));
    const global = Float32Array.from([1, 2]);
    const out = runRound(s, 1, global, [
      { delta: Float32Array.from([1, 0]), numExamples: 1, control: Float32Array.from([3, 0]) },
      { delta: Float32Array.from([0, 4]), numExamples: 3, control: Float32Array.from([0, 6]) },
    ]);
    // D = (1*[1,0] + 3*[0,4]) / 4 = [0.25, 3]; x = [1,2] + 0.5 D
    expect(Array.from(out.weights)).toEqual([1.125, 3.5]);
    // c = 0 + (2/10) * ([3,0]+[0,6])/2 = [0.3, 0.6]
    const c = s.serverControl!(2)!;
    expect(c[0]).toBeCloseTo(0.3, 6);
    expect(c[1]).toBeCloseTo(0.6, 6);
    const twin = createStrategy(plan('scaffold', { serverLearningRate: 0.5, populationSize: 10 }));
    twin.importState!(JSON.parse(JSON.stringify(s.exportState!())));
    expect(twin.serverControl!(2)).toEqual(c);
    // Sent with the instruction in the plan's codec, decodable by devices.
    expect(f32Codec.decode(encodeServerControl(s, plan('scaffold', {}), 2)!, 2)).toEqual(c);
    expect(encodeServerControl(createStrategy(plan('fedavg', {})), plan('fedavg', {}), 2)).toBeUndefined();
  });

  it('FedDyn: h -= alpha |P|/N D, x = x + D - h/alpha, over two rounds', () => {
    const alpha = 0.5;
    const s = createStrategy(plan('feddyn', { alpha, populationSize: 4 }));
    const g0 = Float32Array.from([0, 0]);
    const r1 = runRound(s, 1, g0, [{ delta: Float32Array.from([2, -2]), numExamples: 1 }, { delta: Float32Array.from([2, -2]), numExamples: 1 }]);
    // h1 = -0.5 * (2/4) * [2,-2] = [-0.5, 0.5]; x1 = D - h1/alpha = [2,-2] + [1,-1]
    expect(Array.from(r1.weights)).toEqual([3, -3]);
    const r2 = runRound(s, 2, r1.weights, [{ delta: Float32Array.from([0, 0]), numExamples: 1 }]);
    // h2 = h1 (D = 0); x2 = x1 + 0 - h1/alpha = [4, -4]: the correction keeps pushing until devices agree
    expect(Array.from(r2.weights)).toEqual([4, -4]);
  });

  it('refuses out-of-range parameters with the parameter named', () => {
    const cases: Array<[string, Record<string, unknown>, Record<string, unknown>, string]> = [
      ['scaffold', { serverLearningRate: -1 }, {}, 'serverLearningRate'],
      ['scaffold', { populationSize: 2 }, {}, 'populationSize'],
      ['scaffold', {}, { optimizer: 'momentum' }, 'optimizer'],
      ['scaffold', {}, { proximalMu: 0.1 }, 'proximalMu'],
      ['feddyn', { alpha: 0 }, {}, 'alpha'],
      ['feddyn', { alpha: 101 }, {}, 'alpha'],
      ['feddyn', { beta: 1 }, {}, ''],
    ];
    for (const [name, params, extra, path] of cases) {
      let caught: unknown;
      try {
        createStrategy(plan(name, params, extra));
      } catch (e) {
        caught = e;
      }
      expect(caught, `${name} ${JSON.stringify(params)}`).toBeInstanceOf(AppError);
      const d = (caught as AppError).details as { strategy: string; issues: Array<{ path: string; message: string }> };
      expect(d.strategy).toBe(name);
      expect(d.issues[0].path).toBe(path);
      if (!path) expect(d.issues[0].message).toMatch(/beta/); // an unknown key: zod names it in the message
    }
  });
});

/**
 * Heterogeneous quadratics f_i(w) = lambda_i / 2 (w - a_i)^2, K local SGD steps per round, all
 * devices every round. The global optimum is sum(lambda_i a_i) / sum(lambda_i); FedAvg with many
 * local steps converges to a biased point (client drift), SCAFFOLD and FedDyn to the optimum. The
 * device side is the SDK's (drift-state.ts with a device-state store), the server side the strategy.
 */
describe('drift correction on heterogeneous quadratics (SDK device side + server strategy)', () => {
  const lambdas = [1, 4, 0.5];
  const targets = [3, -2, 6];
  const optimum = lambdas.reduce((s, l, i) => s + l * targets[i], 0) / lambdas.reduce((a, b) => a + b, 0);
  const lr = 0.1;
  const K = 20;

  async function run(name: string, params: Record<string, unknown>, rounds: number): Promise<number> {
    const s: Strategy = createStrategy(plan(name, params, { learningRate: lr }));
    const store = new MemoryStateStore();
    let x: Float32Array = Float32Array.from([0]);
    for (let round = 1; round <= rounds; round++) {
      s.configureFit(round, ['d0', 'd1', 'd2'], () => 0.5);
      const agg = s.beginFit(round, 1);
      const clientPlan = s.configureClientPlan?.(round, { proximalMu: 0 } as never);
      const drift = clientPlan?.driftCorrection as DriftCorrection | undefined;
      const control = s.serverControl?.(1) ? f32Codec.encode(s.serverControl(1)!) : undefined;
      for (let i = 0; i < 3; i++) {
        const vectors = DeviceVectors.for(store, `d${i}`, 't');
        const d = await beginDrift(vectors, drift, control, 1);
        const mu = drift?.kind === 'feddyn' ? drift.alpha : 0;
        let y = x[0];
        for (let k = 0; k < K; k++) y -= lr * (lambdas[i] * (y - targets[i]) + (d?.correction[0] ?? 0) + mu * (y - x[0]));
        const delta = Float32Array.from([y - x[0]]);
        const dc = d?.finish(delta, K, lr);
        await vectors.commit();
        agg.add({ clientId: `d${i}`, numExamples: 1, delta, metrics: {}, ...(dc ? { control: dc } : {}) });
      }
      x = s.aggregateFit(round, agg, [], x).weights;
    }
    return x[0];
  }

  it('FedAvg drifts away from the optimum; SCAFFOLD and FedDyn reach it', async () => {
    const fedavg = await run('fedavg', {}, 150);
    const scaffold = await run('scaffold', {}, 150);
    const feddyn = await run('feddyn', { alpha: 0.5 }, 150);
    expect(Math.abs(fedavg - optimum)).toBeGreaterThan(0.3);
    expect(Math.abs(scaffold - optimum)).toBeLessThan(1e-3);
    expect(Math.abs(feddyn - optimum)).toBeLessThan(1e-3);
  });
});
