import { AppError } from '../errors.js';
import type { Rng } from './bandit.js';
import type { BatchingConfig } from './batcher.js';

export interface ServingOptions {
  /** Resident bytes of loaded versions together (LRU beyond). Default 512 MiB. */
  maxModelBytes?: number;
  /** Default dynamic batching; deployments may override per field. */
  batching?: Partial<BatchingConfig>;
  /** Fraction of request ids whose payloads are logged. Default 0.01. */
  payloadSampleRate?: number;
  /** Newest payload records kept per model. Default 1000. */
  payloadCapPerModel?: number;
  /** Rows of one request that are logged (the first ones; the record notes the original count). Default 32. */
  payloadMaxRows?: number;
  /** Largest batch dimension of one request. Default 1024. */
  maxRowsPerRequest?: number;
  /** How long an alias resolution is reused. Default 1000 ms. */
  aliasTtlMs?: number;
  /** How often aliases named in deployments are re-resolved and new versions warmed. Default 2000 ms; 0 disables. */
  warmIntervalMs?: number;
  /** Served request ids remembered for bandit feedback. Default 100000. */
  feedbackCapacity?: number;
  /** Preload and warm the targets of stored deployments at start. Default true. */
  preload?: boolean;
  rng?: Rng;
}

export type ResolvedServingOptions = Required<Omit<ServingOptions, 'batching' | 'rng'>>;

/** The defaults documented above, filled in; FL_ERR_CONFIG_INVALID for values out of range. */
export function resolveServingOptions(o: ServingOptions): ResolvedServingOptions {
  const r: ResolvedServingOptions = {
    maxModelBytes: o.maxModelBytes ?? 512 * 1024 * 1024,
    payloadSampleRate: o.payloadSampleRate ?? 0.01,
    payloadCapPerModel: o.payloadCapPerModel ?? 1000,
    payloadMaxRows: o.payloadMaxRows ?? 32,
    maxRowsPerRequest: o.maxRowsPerRequest ?? 1024,
    aliasTtlMs: o.aliasTtlMs ?? 1000,
    warmIntervalMs: o.warmIntervalMs ?? 2000,
    feedbackCapacity: o.feedbackCapacity ?? 100_000,
    preload: o.preload ?? true,
  };
  const bad = (option: string, rule: string) => new AppError('FL_ERR_CONFIG_INVALID', { option: `serving.${option}`, rule });
  if (!(r.payloadSampleRate >= 0 && r.payloadSampleRate <= 1)) throw bad('payloadSampleRate', 'in [0, 1]');
  for (const k of ['maxModelBytes', 'payloadCapPerModel', 'payloadMaxRows', 'maxRowsPerRequest', 'feedbackCapacity'] as const) {
    if (!(Number.isInteger(r[k]) && r[k] >= 1)) throw bad(k, 'an integer >= 1');
  }
  for (const k of ['aliasTtlMs', 'warmIntervalMs'] as const) if (!(r[k] >= 0)) throw bad(k, '>= 0');
  const b = o.batching ?? {};
  if (b.maxBatchSize !== undefined && !(Number.isInteger(b.maxBatchSize) && b.maxBatchSize >= 1)) throw bad('batching.maxBatchSize', 'an integer >= 1');
  if (b.maxQueueSize !== undefined && !(Number.isInteger(b.maxQueueSize) && b.maxQueueSize >= 1)) throw bad('batching.maxQueueSize', 'an integer >= 1');
  if (b.maxQueueDelayMs !== undefined && !(b.maxQueueDelayMs >= 0)) throw bad('batching.maxQueueDelayMs', '>= 0');
  if (b.timeoutMs !== undefined && !(b.timeoutMs >= 0)) throw bad('batching.timeoutMs', '>= 0 (0: none)');
  if (b.delay !== undefined && b.delay !== 'adaptive' && b.delay !== 'fixed') throw bad('batching.delay', "'adaptive' or 'fixed'");
  if (b.instances !== undefined && !(Number.isInteger(b.instances) && b.instances >= 0 && b.instances <= 64)) throw bad('batching.instances', 'an integer in [0, 64]');
  return r;
}
