import * as z from 'zod';

/**
 * The plan fields of asynchronous tasks (`mode: "async"`, buffered aggregation as in FedBuff,
 * Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous Aggregation"). Every field is
 * optional in the schema; TaskPlanSchema requires concurrency and bufferSize for async plans, and
 * `modeFieldConflict` refuses a plan that mixes them with sync-only fields. docs/async.md documents
 * each field.
 */
export const StalenessWeightingSchema = z.discriminatedUnion('kind', [
  /** Every report weighs 1 whatever its staleness. */
  z.object({ kind: z.literal('constant') }).strict(),
  /** (1 + s)^-a (FedAsync, Xie et al. 2019; FedBuff uses a = 0.5). */
  z.object({ kind: z.literal('polynomial'), a: z.number().min(0).max(10).default(0.5) }).strict(),
  /** 1 while s <= b, then 1 / (a (s - b) + 1) (FedAsync's hinge). */
  z.object({ kind: z.literal('hinge'), a: z.number().min(0).max(1000).default(10), b: z.number().int().min(0).max(1_000_000).default(4) }).strict(),
]);
export type StalenessWeighting = z.infer<typeof StalenessWeightingSchema>;

export const AsyncPlanFields = {
  /** Devices training at once. */
  concurrency: z.number().int().min(1).max(100000).optional(),
  /** K: reports folded before the global model steps. */
  bufferSize: z.number().int().min(1).max(100000).optional(),
  /** Model steps a report's base version may lag; an older report is refused (FL_ERR_ASYNC_STALE_REPORT). Absent: no bound. */
  maxStaleness: z.number().int().min(0).max(1_000_000).optional(),
  /** How a report's weight falls with its staleness (default polynomial, a = 0.5). */
  stalenessWeighting: StalenessWeightingSchema.optional(),
  /** Server learning rate: the buffer's weighted mean delta is scaled by it before the strategy's server step (default 1). */
  serverLearningRate: z.number().gt(0).max(100).optional(),
  /** Commit a registry version every N model steps (default 1). */
  publishEvery: z.number().int().min(1).max(100000).optional(),
};

export const ASYNC_ONLY_FIELDS = Object.keys(AsyncPlanFields) as Array<keyof typeof AsyncPlanFields>;
/** Fields that only mean something for rounds (secure aggregation's phases are those of a round, docs/secure-aggregation.md). */
export const SYNC_ONLY_FIELDS = ['clientsPerRound', 'overSelect', 'minReports', 'secureAggregation'] as const;

/**
 * The first field of a raw plan (or plan patch) that does not belong to `mode`, or null. Called on
 * what the user sent, before defaults are filled in.
 */
export function modeFieldConflict(raw: Record<string, unknown>, mode: unknown): { field: string; message: string } | null {
  const async = mode === 'async';
  const wrong: readonly string[] = async ? SYNC_ONLY_FIELDS : ASYNC_ONLY_FIELDS;
  for (const f of wrong) {
    if (raw[f] === undefined) continue;
    if (f === 'secureAggregation') return { field: f, message: 'secure aggregation runs in rounds; async plans cannot use it' };
    return { field: f, message: async ? `${f} is for sync plans; async plans use bufferSize and concurrency` : `${f} is for async plans (mode: "async")` };
  }
  return null;
}
