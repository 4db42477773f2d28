import { createRng, gaussian, shuffle, type Rng } from './rng.js';

/**
 * Model-poisoning fault for simulations (flotilla-sim --attack): a fixed, seeded set of devices
 * (a `fraction` of all devices, chosen once per run) reports a poisoned update in every round
 * it is selected for, through the SDK's `hooks.transformDelta`:
 *  - scale:F:FRACTION   the honest delta multiplied by F (e.g. -10: a boosted step the wrong way);
 *  - noise:STD:FRACTION the delta replaced by Gaussian noise N(0, STD^2) per coordinate.
 * The device trains honestly first, so its timing and example count look normal.
 */
export type Attack = { kind: 'scale'; factor: number; fraction: number } | { kind: 'noise'; std: number; fraction: number };

export const ATTACK_SYNTAX = '--attack must look like scale:FACTOR:FRACTION or noise:STD:FRACTION, e.g. scale:-10:0.1';

/** Parse `scale:F:P` or `noise:STD:P`; throws RangeError with ATTACK_SYNTAX (or the bad part) otherwise. */
export function parseAttack(text: string): Attack {
  const parts = text.split(':');
  if (parts.length !== 3 || parts.some((p) => p.trim() === '')) throw new RangeError(ATTACK_SYNTAX);
  const [kind, a, f] = [parts[0], Number(parts[1]), Number(parts[2])];
  if (!Number.isFinite(a) || !Number.isFinite(f)) throw new RangeError(ATTACK_SYNTAX);
  if (!(f > 0 && f < 1)) throw new RangeError('--attack: the fraction of malicious devices must be in (0, 1)');
  if (kind === 'scale') return { kind, factor: a, fraction: f };
  if (kind === 'noise') {
    if (!(a > 0)) throw new RangeError('--attack: the noise standard deviation must be > 0');
    return { kind, std: a, fraction: f };
  }
  throw new RangeError(ATTACK_SYNTAX);
}

/** Indices of the malicious devices among `count`: exactly round(fraction * count) (at least 1), seeded. */
export function chooseAttackers(count: number, fraction: number, seed: number): Set<number> {
  const k = Math.min(count, Math.max(1, Math.round(fraction * count)));
  const idx = shuffle(Uint32Array.from({ length: count }, (_, i) => i), createRng(seed));
  return new Set(Array.from(idx.subarray(0, k)));
}

/** Poison `delta` in place and return it. */
export function applyAttack(delta: Float32Array, attack: Attack, rng: Rng): Float32Array {
  if (attack.kind === 'scale') {
    for (let i = 0; i < delta.length; i++) delta[i] *= attack.factor;
  } else {
    for (let i = 0; i < delta.length; i++) delta[i] = attack.std * gaussian(rng);
  }
  return delta;
}
