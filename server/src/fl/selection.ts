import { sample, type Rng } from './rng.js';

/**
 * Selection (Bonawitz et al. 2019): pick ceil(target * overSelect) of the eligible devices at
 * random, so the round survives the usual 6-10% dropouts. Returns fewer when fewer are eligible.
 */
export function selectionSize(target: number, overSelect: number): number {
  return Math.ceil(target * overSelect - 1e-9);
}

export function selectClients(eligible: readonly string[], target: number, overSelect: number, rng: Rng): string[] {
  return sample(eligible, selectionSize(target, overSelect), rng);
}
