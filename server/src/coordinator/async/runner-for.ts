import type { TaskRecord } from '../../store/records.js';
import type { CoordinatorDeps } from '../deps.js';
import { TaskRunner } from '../task-runner.js';
import { AsyncTaskRunner } from './async-task-runner.js';
import { markLostSteps } from './async-publisher.js';

/** What drives a task: rounds (TaskRunner) or buffered asynchronous steps (AsyncTaskRunner), by its plan's mode. */
export type Runner = TaskRunner | AsyncTaskRunner;

export function runnerFor(deps: CoordinatorDeps, task: TaskRecord, weights: Float32Array): Runner {
  return task.plan.mode === 'async' ? new AsyncTaskRunner(deps, task, weights) : new TaskRunner(deps, task, weights);
}

/** Start-up repair before a task resumes (see markLostSteps); returns the task to resume (unchanged for sync tasks). */
export async function prepareResume(deps: Pick<CoordinatorDeps, 'store'>, task: TaskRecord): Promise<TaskRecord> {
  return task.plan.mode === 'async' ? markLostSteps(deps.store, task) : task;
}
