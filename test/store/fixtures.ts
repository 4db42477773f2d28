import { expect } from 'vitest';
import { AppError, type ErrorCode, type ModelSpec, type TaskPlan } from '@flotilla/protocol';
import type { RoundRecord, TaskRecord, VersionRecord } from '../../server/src/store/records.js';

/** Records for the store and registry suites: every optional field appears in at least one fixture. */
export const SPEC: ModelSpec = {
  topology: { class_name: 'Sequential', config: { name: 'tiny', layers: [] } },
  manifest: [
    { name: 'dense/kernel', shape: [2, 3], dtype: 'float32', offset: 0, size: 6 },
    { name: 'dense/bias', shape: [3], dtype: 'float32', offset: 6, size: 3 },
  ],
  inputShape: [2],
  numClasses: 3,
};

export const PLAN = {
  clientsPerRound: 2,
  overSelect: 1.3,
  roundDeadlineMs: 1000,
  epochs: 1,
  batchSize: 10,
  learningRate: 0.1,
  optimizer: 'sgd',
  codec: 'f32',
  proximalMu: 0,
  maxRounds: 10,
  evalClientsPerRound: 0,
  maxUpdateBytes: 1 << 20,
  strategy: { name: 'fedavg', params: {} },
} as unknown as TaskPlan;

export function task(id: string, patch: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    modelName: id,
    spec: SPEC,
    plan: PLAN,
    state: 'running',
    currentVersion: 1,
    nextRound: 1,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...patch,
  };
}

export function version(model: string, v: number, patch: Partial<VersionRecord> = {}): VersionRecord {
  return {
    model,
    version: v,
    createdAt: 1_700_000_000_000 + v,
    spec: SPEC,
    metrics: {},
    artifacts: [{ name: 'weights', sha256: 'a'.repeat(64), size: 36 }],
    tags: [],
    archived: false,
    ...patch,
  };
}

export function round(taskId: string, r: number, patch: Partial<RoundRecord> = {}): RoundRecord {
  return {
    taskId,
    round: r,
    state: 'training',
    baseVersion: r,
    selected: ['c1', 'c2'],
    reported: [],
    rejected: [],
    dropped: [],
    startedAt: 1_700_000_000_100 + r,
    deadline: 1_700_000_001_100 + r,
    trainMetrics: {},
    evalMetrics: {},
    centralMetrics: {},
    bytesUp: 0,
    bytesDown: 0,
    ...patch,
  };
}

/** Await `p` and check that it rejects with AppError(code). */
export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  return err as AppError;
}
