import { addMod, applyPairMask, expandMask, pairSeed, pairSign, reconstruct, type Share } from '@flotilla/protocol';

/**
 * The coordinator's last step of SecAgg/SecAgg+ (docs/secure-aggregation.md, "Unmasking"): from
 * the sum of the survivors' masked inputs and the shares they revealed, remove every survivor's
 * self mask (rebuilt from t shares of its seed) and the pairwise masks survivors added with
 * devices that dropped after sharing (rebuilt from t shares of the dropped device's mask key).
 * Pairwise masks between two survivors cancel in the sum and are never rebuilt.
 * Throws UnmaskError (the round fails cleanly) when some secret has fewer than t shares.
 */
export class UnmaskError extends Error {}

export interface UnmaskInput {
  taskId: string;
  round: number;
  threshold: number;
  /** Sum mod 2^32 of the survivors' masked inputs; unmasked in place. */
  sum: Uint32Array;
  survivors: readonly number[];
  dropped: readonly number[];
  /** Masking public key of each device (by index). */
  maskKeys: ReadonlyMap<number, Uint8Array>;
  /** For each survivor: the neighbours whose shares it received (it masked with exactly those). */
  receivedFrom: ReadonlyMap<number, readonly number[]>;
  /** Revealed shares: seed shares of survivors (`b`) and mask-key shares of dropped devices (`s`), by owner index. */
  seedShares: ReadonlyMap<number, Share[]>;
  keyShares: ReadonlyMap<number, Share[]>;
}

export async function unmask(x: UnmaskInput): Promise<Uint32Array> {
  const need = (owner: number, shares: Share[] | undefined, what: string): Share[] => {
    if (!shares || shares.length < x.threshold) throw new UnmaskError(`${shares?.length ?? 0} of ${x.threshold} shares of device #${owner}'s ${what} were revealed`);
    return shares;
  };
  // Check every secret can be rebuilt before spending time on any mask.
  for (const v of x.survivors) need(v, x.seedShares.get(v), 'self-mask seed');
  for (const v of x.dropped) need(v, x.keyShares.get(v), 'mask key');
  for (const v of x.survivors) {
    const seed = reconstruct(x.seedShares.get(v)!, x.threshold);
    addMod(x.sum, await expandMask(seed, x.sum.length), -1);
  }
  for (const v of x.dropped) {
    const key = reconstruct(x.keyShares.get(v)!, x.threshold);
    for (const u of x.survivors) {
      if (!x.receivedFrom.get(u)?.includes(v)) continue;
      // u added sign(u, v) * PRG(seed_uv); take it back out.
      const seed = await pairSeed(key, x.maskKeys.get(u)!, x.taskId, x.round);
      await applyPairMask(x.sum, seed, pairSign(u, v) === 1 ? -1 : 1);
    }
  }
  return x.sum;
}
