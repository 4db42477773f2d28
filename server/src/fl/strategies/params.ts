import { z } from 'zod';
import { AppError } from '@flotilla/protocol';
import type { TaskPlan } from '@flotilla/protocol';
import type { FedAvgParams } from './fedavg.js';

/**
 * Strategy params are validated once, in the factory (strategies/index.ts), with a strict zod
 * schema per strategy; anything else in `plan.strategy.params` is a spec error.
 */
export function parseParams<S extends z.ZodType>(schema: S, plan: TaskPlan): z.infer<S> {
  const r = schema.safeParse(plan.strategy.params ?? {});
  if (!r.success) {
    throw new AppError('FL_ERR_TASK_INVALID_SPEC', {
      strategy: plan.strategy.name,
      issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return r.data;
}

/** A spec error about one strategy param, for checks a schema cannot express. */
export function invalidParam(plan: TaskPlan, path: string, message: string): AppError {
  return new AppError('FL_ERR_TASK_INVALID_SPEC', { strategy: plan.strategy.name, issues: [{ path, message }] });
}

/** Selection and evaluation sizes every strategy takes from the plan itself. */
export function selectionParams(plan: TaskPlan): FedAvgParams {
  return { clientsPerRound: plan.clientsPerRound, overSelect: plan.overSelect, evalClientsPerRound: plan.evalClientsPerRound };
}
