import { AppError } from '@flotilla/protocol';
import type { TaskPlan } from '@flotilla/protocol';
import type { Strategy } from '../strategy.js';
import { z } from 'zod';
import { selectionSize } from '../selection.js';
import { FedAvg } from './fedavg.js';
import { FedAvgM, FedAvgMParamsSchema } from './fedavgm.js';
import { FedProx } from './fedprox.js';
import { FedOptParamsSchema } from './fed-opt.js';
import { FedAdam } from './fedadam.js';
import { FedYogi } from './fedyogi.js';
import { FedAdagrad } from './fedadagrad.js';
import { FedMedian } from './fedmedian.js';
import { FedTrimmedAvg, FedTrimmedAvgParamsSchema } from './fed-trimmed-avg.js';
import { Krum, KrumParamsSchema } from './krum.js';
import { NormBounded, NormBoundedParamsSchema } from './norm-bounded.js';
import { invalidParam, parseParams, selectionParams } from './params.js';
import { DpFedAvg, DpFedAvgParamsSchema } from '../dp/dp-fedavg.js';
import { Scaffold, ScaffoldParamsSchema } from './scaffold.js';
import { FedDyn, FedDynParamsSchema } from './feddyn.js';

/**
 * Build a task's strategy from its plan. Each strategy validates its own params here (once, at
 * the boundary) and throws FL_ERR_TASK_INVALID_SPEC on bad ones.
 */
type Factory = (plan: TaskPlan) => Strategy;

const NoParams = z.object({}).strict();
const BufferedParams = z.object({ maxUpdates: z.number().int().min(1).optional() }).strict();

/** Updates a non-streaming strategy keeps per round: at least the selection size (see BufferedAggregator). */
function maxUpdatesOf(plan: TaskPlan, requested: number | undefined): number {
  const needed = selectionSize(plan.clientsPerRound, plan.overSelect);
  if (requested === undefined) return needed;
  if (requested < needed) throw invalidParam(plan, 'maxUpdates', `must be at least the selection size ${needed}`);
  return requested;
}

function krumFactory(name: 'krum' | 'multikrum'): Factory {
  return (plan) => {
    const p = parseParams(KrumParamsSchema, plan);
    if (plan.clientsPerRound <= 2 * p.byzantine + 2) {
      throw invalidParam(plan, 'byzantine', `Krum needs clientsPerRound > 2 * byzantine + 2 (Blanchard et al. 2017)`);
    }
    if (name === 'krum' && p.keep !== undefined && p.keep !== 1) throw invalidParam(plan, 'keep', 'krum keeps 1; use multikrum');
    const keep = name === 'krum' ? 1 : p.keep;
    return new Krum(selectionParams(plan), maxUpdatesOf(plan, p.maxUpdates), p.byzantine, keep, name);
  };
}

/** Strategies whose devices keep per-device drift-correction state (docs/strategies.md, "SCAFFOLD and FedDyn"). */
const DRIFT_CORRECTING = new Set(['scaffold', 'feddyn']);

/** Plan checks shared by SCAFFOLD and FedDyn; each names the parameter at fault. */
function checkDriftPlan(plan: TaskPlan, populationSize: number | undefined): void {
  if (plan.proximalMu > 0) throw invalidParam(plan, 'proximalMu', `${plan.strategy.name} corrects drift itself; proximalMu must be 0`);
  if (populationSize !== undefined && populationSize < plan.clientsPerRound) {
    throw invalidParam(plan, 'populationSize', `must be at least clientsPerRound (${plan.clientsPerRound})`);
  }
}

const FACTORIES: Record<string, Factory> = {
  fedavg: (plan) => {
    parseParams(NoParams, plan); // FedAvg takes none: a typo'd param is an error, not silently ignored
    return new FedAvg(selectionParams(plan));
  },
  fedavgm: (plan) => new FedAvgM(selectionParams(plan), parseParams(FedAvgMParamsSchema, plan)),
  fedprox: (plan) => {
    const p = parseParams(z.object({ mu: z.number().min(0).max(100).optional() }).strict(), plan);
    if (p.mu !== undefined && p.mu !== plan.proximalMu) {
      throw invalidParam(plan, 'mu', `set the plan's proximalMu (sent to devices) instead; it is ${plan.proximalMu}`);
    }
    if (!(plan.proximalMu > 0)) throw invalidParam(plan, 'mu', 'fedprox needs the plan\'s proximalMu > 0 (0 is fedavg)');
    return new FedProx(selectionParams(plan), plan.proximalMu);
  },
  fedadam: (plan) => new FedAdam(selectionParams(plan), parseParams(FedOptParamsSchema({ eta: 0.1, tau: 1e-9 }), plan)),
  fedyogi: (plan) => new FedYogi(selectionParams(plan), parseParams(FedOptParamsSchema({ eta: 0.01, tau: 1e-3 }), plan)),
  fedadagrad: (plan) => {
    const p = parseParams(FedOptParamsSchema({ eta: 0.1, tau: 1e-9 }).omit({ beta2: true }), plan);
    return new FedAdagrad(selectionParams(plan), { ...p, beta2: 0 });
  },
  fedmedian: (plan) => new FedMedian(selectionParams(plan), maxUpdatesOf(plan, parseParams(BufferedParams, plan).maxUpdates)),
  fedtrimmedavg: (plan) => {
    const p = parseParams(FedTrimmedAvgParamsSchema, plan);
    return new FedTrimmedAvg(selectionParams(plan), maxUpdatesOf(plan, p.maxUpdates), p.beta);
  },
  krum: krumFactory('krum'),
  multikrum: krumFactory('multikrum'),
  dpfedavg: (plan) => {
    const p = parseParams(DpFedAvgParamsSchema, plan);
    if (p.inner === 'dpfedavg') throw invalidParam(plan, 'inner', 'dpfedavg cannot wrap itself');
    if (DRIFT_CORRECTING.has(p.inner)) throw invalidParam(plan, 'inner', `dpfedavg does not wrap ${p.inner} (its per-device state is not clipped or noised)`);
    const inner = createStrategy({ ...plan, strategy: { name: p.inner, params: p.innerParams } });
    if (!inner.streaming) throw invalidParam(plan, 'inner', `${p.inner} is not streaming; dpfedavg wraps the FedAvg family only`);
    const expectedClients = p.expectedClients ?? plan.clientsPerRound;
    let adaptive;
    if (p.adaptive) {
      const clippedCountStddev = p.adaptive.clippedCountStddev ?? expectedClients / 20;
      if (p.noiseMultiplier > 0 && !(2 * clippedCountStddev > p.noiseMultiplier)) {
        throw invalidParam(plan, 'adaptive.clippedCountStddev', 'must exceed noiseMultiplier / 2 (Andrew et al. 2021)');
      }
      adaptive = { targetQuantile: p.adaptive.targetQuantile, learningRate: p.adaptive.learningRate, clippedCountStddev };
    }
    return new DpFedAvg(inner, {
      noiseMultiplier: p.noiseMultiplier,
      clipNorm: p.clipNorm,
      clipping: p.clipping,
      expectedClients,
      adaptive,
      targetDelta: p.targetDelta,
      populationSize: p.populationSize,
      seed: p.seed,
    });
  },
  scaffold: (plan) => {
    const p = parseParams(ScaffoldParamsSchema, plan);
    checkDriftPlan(plan, p.populationSize);
    // Option II's c_i+ = c_i - c + (x - y) / (K lr) is the mean corrected gradient only for plain SGD steps.
    if (plan.optimizer !== 'sgd') throw invalidParam(plan, 'optimizer', `scaffold's control variate update assumes plain SGD on devices; got ${plan.optimizer}`);
    return new Scaffold(selectionParams(plan), p);
  },
  feddyn: (plan) => {
    const p = parseParams(FedDynParamsSchema, plan);
    checkDriftPlan(plan, p.populationSize);
    return new FedDyn(selectionParams(plan), p);
  },
  normbounded: (plan) => new NormBounded(selectionParams(plan), parseParams(NormBoundedParamsSchema, plan).maxNorm),
};

export function createStrategy(plan: TaskPlan): Strategy {
  const f = FACTORIES[plan.strategy.name];
  if (!f) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { strategy: plan.strategy.name, known: Object.keys(FACTORIES) });
  return f(plan);
}

export function strategyNames(): string[] {
  return Object.keys(FACTORIES);
}
