import { defaultDegree, maxSummands, type SecureAggregation, type TaskPlan } from '@flotilla/protocol';
import { AppError } from '../../errors.js';
import { selectionSize } from '../../fl/selection.js';

/**
 * Server-side checks of `plan.secureAggregation` (docs/secure-aggregation.md, "Plans"), run by
 * checkPlan at every boundary that accepts a plan. Secure aggregation hands the strategy one
 * update, the weighted mean of the survivors, so only strategies that need nothing else are
 * allowed: the FedAvg family, whose server step reads the mean alone. Everything that looks at
 * individual updates is refused with FL_ERR_SECAGG_STRATEGY_REFUSED, and every codec but f32 with
 * FL_ERR_SECAGG_CODEC_REFUSED (the masked vector is its own encoding).
 */
export const SECAGG_STRATEGIES: ReadonlySet<string> = new Set(['fedavg', 'fedavgm', 'fedprox', 'fedadam', 'fedyogi', 'fedadagrad']);

const WHY: Record<string, string> = {
  fedmedian: 'the coordinate-wise median needs every update',
  fedtrimmedavg: 'the trimmed mean sorts individual updates',
  krum: 'Krum scores each update by its distance to the others',
  multikrum: 'Multi-Krum scores each update by its distance to the others',
  normbounded: 'norm bounding clips each update on the server',
  dpfedavg: 'server-side DP clips each update; use secureAggregation.distributedDp (device-side clipping and noise) instead',
  scaffold: "SCAFFOLD's control-variate deltas would travel beside the masked update in the clear; masking them is not implemented",
  feddyn: "FedDyn's correction state is not combined with masking (not implemented)",
};

/** Neighbours per device for `n` devices that advertised keys (complete graph for SecAgg). */
export function degreeOf(s: SecureAggregation, n: number): number {
  if (s.protocol === 'secagg') return n - 1;
  const k = s.neighbours ?? defaultDegree(n);
  return Math.min(n - 1, k + (k % 2)); // the Harary graph joins k/2 on each side: odd k rounds up
}

export function checkSecAggPlan(plan: TaskPlan): void {
  const s = plan.secureAggregation;
  if (!s) return;
  const name = plan.strategy.name;
  if (!SECAGG_STRATEGIES.has(name)) {
    throw new AppError('FL_ERR_SECAGG_STRATEGY_REFUSED', { strategy: name, why: WHY[name] ?? `${name} is not one of ${[...SECAGG_STRATEGIES].join(', ')}` });
  }
  if (plan.screening !== undefined) throw new AppError('FL_ERR_SECAGG_STRATEGY_REFUSED', { screening: true, why: 'norm screening measures each update' });
  if (plan.codec !== 'f32') throw new AppError('FL_ERR_SECAGG_CODEC_REFUSED', { codec: plan.codec });
  const n = selectionSize(plan.clientsPerRound, plan.overSelect);
  const bad = (why: string) => new AppError('FL_ERR_SECAGG_INVALID_PLAN', { why });
  if (s.threshold > n) throw bad(`threshold ${s.threshold} exceeds the ${n} devices selected per round`);
  if (s.protocol === 'secagg' && s.neighbours !== undefined) throw bad('neighbours applies to secagg+ only (secagg uses the complete graph)');
  // Shares of a device's secrets go to its neighbours and itself: the threshold cannot exceed them.
  const shares = degreeOf(s, n) + 1;
  if (s.threshold > shares) throw bad(`threshold ${s.threshold} exceeds the ${shares} shares of each device (neighbours + 1)`);
  // With t above half the shares, honest holders cannot give anyone t shares of both of one device's secrets (docs/secure-aggregation.md, "Threat model").
  if (2 * s.threshold <= shares) throw bad(`threshold ${s.threshold} must be more than half of the ${shares} shares of each device (neighbours + 1)`);
  if (n > maxSummands(s.quantization.bits)) throw bad(`${n} devices of ${s.quantization.bits}-bit inputs can wrap around 2^32; use at most ${Math.floor(Math.log2(2 ** 31 / n))} bits`);
}
