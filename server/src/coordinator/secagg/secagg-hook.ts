import type { ClientPlan, DecodedSum, SecAggMasked, SecureAggregation, TaskPlan } from '@flotilla/protocol';
import { AppError } from '../../errors.js';
import type { ActiveRound } from '../active-round.js';
import type { CoordinatorDeps } from '../deps.js';
import { SecAggRound } from './secagg-round.js';

/**
 * The task runner's hooks into secure aggregation (coordinator/round-loop.ts and task-runner.ts keep only calls):
 * starting the protocol beside a round's fit instructions, taking masked inputs through the
 * upload gate, and turning the unmasked mean into the one update the strategy folds.
 */
export function beginSecAgg(
  deps: CoordinatorDeps,
  taskId: string,
  a: ActiveRound,
  plan: TaskPlan,
  clientPlan: ClientPlan,
  random: () => number,
  finish: (result: DecodedSum, survivors: string[]) => void,
  fail: (reason: string) => void,
): SecAggRound {
  const s = new SecAggRound(
    {
      taskId,
      round: a.round,
      deadline: a.record.deadline,
      enough: plan.clientsPerRound,
      random,
      send: (id, msg) => deps.devices.send(id, 'secagg', msg),
      done: finish,
      fail,
    },
    plan.secureAggregation!,
    clientPlan.secureAggregation!,
    a.record.selected,
    a.modelLength,
  );
  a.record.secureAggregation = s.view.record;
  return s;
}

/** A masked input: needs the upload slot its fit:ready was granted; the slot is released whatever the outcome. */
export function takeMasked(a: ActiveRound, deviceId: string, m: SecAggMasked): void {
  try {
    if (!a.secagg) throw new AppError('FL_ERR_SECAGG_WRONG_PHASE', { why: 'this task does not use secure aggregation' });
    if (!a.gate.holds(deviceId)) throw new AppError('FL_ERR_PROTO_UPLOAD_NOT_GRANTED', { round: m.round });
    a.secagg.addMasked(deviceId, m.masked);
    a.record.bytesUp += m.masked.byteLength;
  } finally {
    a.gate.release(deviceId);
  }
}

/**
 * The unmasked mean as the round's one update; the survivors count as reported. Under distributed
 * DP the round's metrics carry `dpNoiseMultiplier`: the noise standard deviation of the sum over
 * the clip norm, z sqrt(m / t) for m survivors each adding variance (z C)^2 / t.
 */
export function foldSecure(a: ActiveRound, result: DecodedSum, survivors: string[], cfg: SecureAggregation): void {
  for (const id of survivors) {
    if (a.reported.has(id)) continue;
    a.reported.add(id);
    a.record.reported.push(id);
  }
  // The summed weight in examples (exact while every device had at most maxWeight examples).
  const numExamples = Math.max(1, Math.round(result.weight * cfg.maxWeight));
  const metrics = { ...result.metrics };
  if (cfg.distributedDp) metrics.dpNoiseMultiplier = cfg.distributedDp.noiseMultiplier * Math.sqrt(survivors.length / cfg.threshold);
  a.aggregator.add({ clientId: 'secure-aggregate', numExamples, delta: result.mean, metrics });
}
