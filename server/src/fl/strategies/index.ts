import { AppError } from '@flotilla/client/protocol';
import type { TaskPlan } from '@flotilla/client/protocol';
import type { Strategy } from '../strategy.js';
import { FedAvg } from './fedavg.js';

/**
 * Build a task's strategy from its plan. Each strategy validates its own params here (once, at
 * the boundary) and throws FL_ERR_TASK_INVALID_SPEC on bad ones.
 */
type Factory = (plan: TaskPlan) => Strategy;

const FACTORIES: Record<string, Factory> = {
  fedavg: (plan) =>
    new FedAvg({ clientsPerRound: plan.clientsPerRound, overSelect: plan.overSelect, evalClientsPerRound: plan.evalClientsPerRound }),
};

export function createStrategy(plan: TaskPlan): Strategy {
  const f = FACTORIES[plan.strategy.name];
  if (!f) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { strategy: plan.strategy.name, known: Object.keys(FACTORIES) });
  return f(plan);
}

export function strategyNames(): string[] {
  return Object.keys(FACTORIES);
}
