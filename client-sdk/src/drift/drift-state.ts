import { AppError, getCodec, readHeader, type DriftCorrection } from '@flotilla/protocol';
import type { DeviceVectors } from '../state/device-vectors.js';

/**
 * The device side of SCAFFOLD and FedDyn for one round (docs/strategies.md, "SCAFFOLD and
 * FedDyn"): reads the device's state, gives the trainer its linear term, and after training
 * computes what to report and stages the new state (written once the report was accepted).
 *   scaffold: linear = c - c_i; after K SGD steps of rate lr with model delta d:
 *     dc = c_i+ - c_i = -c - d / (K lr)   (option II: c_i+ = c_i - c + (x - y) / (K lr))
 *   feddyn:   linear = -h_i (the trainer adds alpha/2 ||w - x||^2); after training h_i+ = h_i - alpha d.
 * Vectors are over the trainable vector (protocol/src/tensor/trainable.ts).
 */
export const SCAFFOLD_KEY = 'scaffold.c';
export const FEDDYN_KEY = 'feddyn.h';

export interface DriftRound {
  /** The trainer's linear term. */
  readonly correction: Float32Array;
  /** After training: stage the new state; returns the control delta to report (SCAFFOLD) or undefined. */
  finish(delta: Float32Array, steps: number | undefined, learningRate: number): Float32Array | undefined;
}

/** Decode the instruction's server control variate (its bytes name their codec). */
export function decodeServerControl(bytes: Uint8Array | undefined, length: number): Float32Array {
  if (!bytes) throw new AppError('FL_ERR_PROTO_INVALID_MESSAGE', { why: 'a scaffold instruction without the server control variate' });
  return getCodec(readHeader(bytes).codec).decode(bytes, length);
}

export async function beginDrift(vectors: DeviceVectors, drift: DriftCorrection | undefined, serverControl: Uint8Array | undefined, length: number): Promise<DriftRound | null> {
  if (!drift) return null;
  if (drift.kind === 'scaffold') {
    const c = decodeServerControl(serverControl, length);
    const ci = (await vectors.load(SCAFFOLD_KEY, length)) ?? new Float32Array(length);
    const correction = new Float32Array(length);
    for (let i = 0; i < length; i++) correction[i] = c[i] - ci[i];
    return {
      correction,
      finish(delta, steps, lr) {
        if (!steps) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: 'scaffold needs at least one local step' });
        const dc = new Float32Array(length);
        const next = new Float32Array(length);
        const k = 1 / (steps * lr);
        for (let i = 0; i < length; i++) {
          dc[i] = -c[i] - delta[i] * k;
          next[i] = ci[i] + dc[i];
        }
        vectors.stage(SCAFFOLD_KEY, next);
        return dc;
      },
    };
  }
  const alpha = drift.alpha;
  const h = (await vectors.load(FEDDYN_KEY, length)) ?? new Float32Array(length);
  const correction = new Float32Array(length);
  for (let i = 0; i < length; i++) correction[i] = -h[i];
  return {
    correction,
    finish(delta) {
      const next = new Float32Array(length);
      for (let i = 0; i < length; i++) next[i] = h[i] - alpha * delta[i];
      vectors.stage(FEDDYN_KEY, next);
      return undefined;
    },
  };
}
