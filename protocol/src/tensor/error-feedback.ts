import type { CodecOptions, DeltaCodec } from './codec.js';

/**
 * Client-side error feedback for lossy codecs, above all topk (Stich et al. 2018, "Sparsified SGD
 * with Memory"; Karimireddy et al. 2019, "Error Feedback Fixes SignSGD"). Each round the client
 * sends codec(delta + residual) and keeps residual = (delta + residual) - decoded, so what a
 * coordinate loses in one round is sent in a later one.
 *
 * Contract: after rounds t = 1..T,
 *   sum_t decode(encode_t) = sum_t delta_t + residual_0 - residual_T   (up to float32 rounding),
 * i.e. nothing is lost, only delayed. One instance per (device, task); the caller owns it,
 * decides when to reset() (for instance when the task's model changes shape), and may persist
 * it with exportState()/importState().
 */
export class ErrorFeedback {
  private residual: Float32Array;

  constructor(readonly length: number) {
    this.residual = new Float32Array(length);
  }

  /** Encode `delta` plus the carried residual with `codec`, and update the residual. Does not mutate `delta`. */
  encode(codec: DeltaCodec, delta: Float32Array, options?: CodecOptions): Uint8Array {
    if (delta.length !== this.length) throw new RangeError(`delta length ${delta.length} != ${this.length}`);
    const corrected = new Float32Array(this.length);
    for (let i = 0; i < this.length; i++) corrected[i] = delta[i] + this.residual[i];
    const bytes = codec.encode(corrected, options);
    const sent = codec.decode(bytes, this.length);
    for (let i = 0; i < this.length; i++) corrected[i] -= sent[i];
    this.residual = corrected;
    return bytes;
  }

  /** A copy of the residual carried into the next round. */
  get pending(): Float32Array {
    return this.residual.slice();
  }

  /** L2 norm of the carried residual (a diagnostic the trainer may report as a metric). */
  residualNorm(): number {
    let s = 0;
    for (let i = 0; i < this.length; i++) s += this.residual[i] * this.residual[i];
    return Math.sqrt(s);
  }

  reset(): void {
    this.residual.fill(0);
  }

  exportState(): Float32Array {
    return this.residual.slice();
  }

  importState(residual: Float32Array): void {
    if (residual.length !== this.length) throw new RangeError(`residual length ${residual.length} != ${this.length}`);
    this.residual = residual.slice();
  }
}
