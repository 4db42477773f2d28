import { describe, expect, it } from 'vitest';
import { AppError, TaskPlanSchema } from '@flotilla/protocol';
import { createStrategy, strategyNames } from '../../server/src/fl/strategies/index.js';
import { CLIENTS, strategySuite, type StrategyVariant } from './strategy-suite.js';

/** Suite variants per registered strategy; a strategy registered without an entry fails below. */
const VARIANTS: Record<string, StrategyVariant[]> = {
  fedavg: [{ label: 'default', params: {}, kind: 'mean', streaming: true }],
  fedavgm: [
    { label: 'default', params: {}, kind: 'mean', streaming: true },
    { label: 'eta 0.5', params: { serverLearningRate: 0.5, serverMomentum: 0.5 }, kind: 'adaptive', streaming: true },
  ],
  fedprox: [{ label: 'mu 0.01', params: {}, plan: { proximalMu: 0.01 }, kind: 'mean', streaming: true }],
  fedadam: [{ label: 'default', params: {}, kind: 'adaptive', streaming: true }],
  fedyogi: [{ label: 'default', params: {}, kind: 'adaptive', streaming: true }],
  fedadagrad: [{ label: 'default', params: {}, kind: 'adaptive', streaming: true }],
  fedmedian: [{ label: 'default', params: {}, kind: 'robust', streaming: false }],
  fedtrimmedavg: [{ label: 'beta 0.2', params: { beta: 0.2 }, kind: 'robust', streaming: false }],
  krum: [{ label: 'f=1', params: { byzantine: 1 }, kind: 'robust', streaming: false }],
  multikrum: [{ label: 'f=1', params: { byzantine: 1 }, kind: 'robust', streaming: false }],
  normbounded: [{ label: 'loose bound', params: { maxNorm: 100 }, kind: 'mean', streaming: true }],
  scaffold: [
    { label: 'default', params: {}, kind: 'mean', streaming: true },
    { label: 'eta_g 0.5, N=50', params: { serverLearningRate: 0.5, populationSize: 50 }, kind: 'adaptive', streaming: true },
  ],
  // x + D - h/alpha with h = -alpha |P|/N D: the step is (1 + |P|/N) D, the update's sign
  feddyn: [
    { label: 'alpha 0.01', params: {}, kind: 'adaptive', streaming: true },
    { label: 'alpha 0.1, N=100', params: { alpha: 0.1, populationSize: 100 }, kind: 'adaptive', streaming: true },
  ],
  dpfedavg: [
    { label: 'no noise, loose clip', params: { noiseMultiplier: 0, clipNorm: 100, seed: 3 }, kind: 'mean', streaming: true },
    // std = z * S / expectedClients = 1 * 10 / 5 (S above the update norm ~4.1, so nothing is clipped)
    { label: 'z=1, S=10', params: { noiseMultiplier: 1, clipNorm: 10, seed: 3 }, kind: 'noisy', streaming: true, noiseStd: 2 },
    // adaptive: sigma_b = E/20 = 0.25, z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2 = 96^-1/2; first-round clip 10
    { label: 'adaptive z=0.1', params: { noiseMultiplier: 0.1, clipNorm: 10, seed: 4, adaptive: {} }, kind: 'noisy', streaming: true, noiseStd: 10 / Math.sqrt(96) / 5 },
  ],
};

describe('strategy registry', () => {
  it('has suite variants for every registered strategy', () => {
    for (const name of strategyNames()) expect(VARIANTS[name], `no suite variants for ${name}`).toBeDefined();
  });

  it('rejects unknown names and bad params with FL_ERR_TASK_INVALID_SPEC', () => {
    const bad: Array<[string, Record<string, unknown>, Record<string, unknown>?]> = [
      ['nope', {}],
      ['fedavgm', { serverMomentum: 1 }],
      ['fedavg', { serverLearningRate: 1 }], // fedavg takes no params
      ['fedavgm', { unknownParam: 1 }],
      ['fedadam', { tau: -1 }],
      ['fedyogi', { beta1: 1.5 }],
      ['fedadagrad', { beta2: 0.9 }],
      ['fedprox', {}], // proximalMu 0
      ['fedprox', { mu: 0.1 }, { proximalMu: 0.01 }],
      ['fedtrimmedavg', { beta: 0.5 }],
      ['fedmedian', { maxUpdates: 2 }], // below the selection size
      ['krum', { byzantine: 2 }], // 5 <= 2*2+2
      ['krum', { keep: 3 }],
      ['normbounded', {}],
      ['normbounded', { maxNorm: 0 }],
      ['dpfedavg', { noiseMultiplier: 1 }], // no clipNorm
      ['dpfedavg', { noiseMultiplier: 1, clipNorm: 1, inner: 'fedmedian' }], // not streaming
      ['dpfedavg', { noiseMultiplier: 1, clipNorm: 1, inner: 'dpfedavg' }],
      ['dpfedavg', { noiseMultiplier: 1, clipNorm: 1, innerParams: { serverMomentum: 2 }, inner: 'fedavgm' }],
      ['dpfedavg', { noiseMultiplier: 3, clipNorm: 1, adaptive: { clippedCountStddev: 1 } }], // 2*sigma_b <= z
      ['dpfedavg', { noiseMultiplier: 1, clipNorm: 1, inner: 'scaffold' }], // per-device state is not clipped
      ['scaffold', { serverLearningRate: 0 }],
      ['scaffold', { serverLearningRate: 101 }],
      ['scaffold', { populationSize: 2 }], // below clientsPerRound
      ['scaffold', {}, { optimizer: 'adam' }], // option II assumes plain SGD
      ['scaffold', {}, { proximalMu: 0.1 }],
      ['scaffold', { mu: 0.1 }],
      ['feddyn', { alpha: 0 }],
      ['feddyn', { alpha: -0.1 }],
      ['feddyn', { alpha: 1000 }],
      ['feddyn', { populationSize: 1.5 }],
      ['feddyn', {}, { proximalMu: 0.01 }],
    ];
    for (const [name, params, plan] of bad) {
      let caught: unknown;
      try {
        createStrategy(TaskPlanSchema.parse({ clientsPerRound: CLIENTS, ...plan, strategy: { name, params } }));
      } catch (e) {
        caught = e;
      }
      expect(caught, `${name} ${JSON.stringify(params)}`).toBeInstanceOf(AppError);
      expect((caught as AppError).code).toBe('FL_ERR_TASK_INVALID_SPEC');
    }
  });
});

for (const name of strategyNames()) for (const v of VARIANTS[name] ?? []) strategySuite(name, v);
