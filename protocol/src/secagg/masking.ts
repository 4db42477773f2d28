import { agree, concat, expandMask, KEY_BYTES, SEAL_OVERHEAD } from './crypto.js';
import { addMod, dequantizeSum, quantizeInto } from './quantize.js';
import { SHARE_BYTES } from './shamir.js';
import type { SecAggClientConfig } from './config.js';

/**
 * The vector a device masks, shared by the device (client-sdk/src/secagg/) and the coordinator
 * (server/src/coordinator/secagg/) so both sides read it the same way:
 *   [ f * delta (d words, range clipRange) | f (1 word, range 1) | f * metric_j (range metricRange) ]
 * with f = min(1, numExamples / maxWeight) (f = 1 under distributed DP), each part quantized with
 * `bits` (quantize.ts). Sums of such vectors give sum f_i delta_i, sum f_i and sum f_i m_ij, so the
 * coordinator obtains the example-weighted mean without any device's count in the clear.
 */
export function maskedLength(d: number, cfg: Pick<SecAggClientConfig, 'metricNames'>): number {
  return d + 1 + cfg.metricNames.length;
}

/** Sealed share pair (mask key share, self-mask seed share) from one device to another. */
export const SEALED_PAIR_BYTES = 2 * SHARE_BYTES + SEAL_OVERHEAD;
/** Two X25519 public keys: the encryption key, then the masking key. */
export const PUBLIC_KEYS_BYTES = 2 * KEY_BYTES;

export function encodeInput(delta: Float32Array, numExamples: number, metrics: Record<string, number>, cfg: SecAggClientConfig): Uint32Array {
  const d = delta.length;
  const out = new Uint32Array(maskedLength(d, cfg));
  const f = cfg.dp ? 1 : Math.min(1, numExamples / cfg.maxWeight);
  const w = new Float64Array(d);
  for (let i = 0; i < d; i++) w[i] = f * delta[i];
  quantizeInto(out, 0, w, cfg.bits, cfg.clipRange);
  quantizeInto(out, d, [f], cfg.bits, 1);
  quantizeInto(out, d + 1, cfg.metricNames.map((k) => f * (metrics[k] ?? 0)), cfg.bits, cfg.metricRange);
  return out;
}

export interface DecodedSum {
  /** sum f_i delta_i / sum f_i: the weighted mean delta. */
  mean: Float32Array;
  /** sum f_i (weights in units of maxWeight examples). */
  weight: number;
  metrics: Record<string, number>;
}

/** The weighted mean out of the unmasked sum; RangeError when the summed weight is not positive. */
export function decodeSum(sum: Uint32Array, d: number, cfg: SecAggClientConfig): DecodedSum {
  const weight = dequantizeSum(sum, d, 1, cfg.bits, 1)[0];
  if (!(weight > 0)) throw new RangeError(`the summed weight is ${weight}`);
  const s = dequantizeSum(sum, 0, d, cfg.bits, cfg.clipRange);
  const mean = new Float32Array(d);
  for (let i = 0; i < d; i++) mean[i] = s[i] / weight;
  const m = dequantizeSum(sum, d + 1, cfg.metricNames.length, cfg.bits, cfg.metricRange);
  const metrics: Record<string, number> = {};
  cfg.metricNames.forEach((k, j) => (metrics[k] = m[j] / weight));
  return { mean, weight, metrics };
}

/** Associated data binding a sealed share pair to its task, round, sender and receiver. */
export function shareAad(taskId: string, round: number, from: number, to: number): Uint8Array {
  return new TextEncoder().encode(`flotilla-secagg|${taskId}|${round}|${from}|${to}`);
}

/** The AES key two devices share for their share pairs. */
export function encryptionKey(privateKey: Uint8Array, otherPublic: Uint8Array): Promise<Uint8Array> {
  return agree(privateKey, otherPublic, 'flotilla-secagg-enc');
}

/** The seed of the pairwise mask between two devices (the same from either side). */
export function pairSeed(privateKey: Uint8Array, otherPublic: Uint8Array, taskId: string, round: number): Promise<Uint8Array> {
  return agree(privateKey, otherPublic, `flotilla-secagg-mask|${taskId}|${round}`);
}

/** +1 for the device with the lower index, -1 for the higher: the two masks of a pair cancel in the sum. */
export function pairSign(self: number, other: number): 1 | -1 {
  return self < other ? 1 : -1;
}

/** Add (sign +1) or remove (-1) the pairwise mask of (self, other) on `acc`. */
export async function applyPairMask(acc: Uint32Array, seed: Uint8Array, sign: 1 | -1): Promise<void> {
  addMod(acc, await expandMask(seed, acc.length), sign);
}

/** Plaintext of a sealed share pair. */
export function pairPlaintext(maskKeyShare: Uint8Array, seedShare: Uint8Array): Uint8Array {
  return concat(maskKeyShare, seedShare);
}

/** Uint32 words as little-endian bytes (the wire form of a masked vector) and back. */
export function wordsToBytes(w: Uint32Array): Uint8Array {
  const out = new Uint8Array(w.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < w.length; i++) v.setUint32(i * 4, w[i], true);
  return out;
}

export function bytesToWords(b: Uint8Array): Uint32Array {
  if (b.length % 4 !== 0) throw new RangeError('masked input length is not a multiple of 4');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Uint32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = v.getUint32(i * 4, true);
  return out;
}
