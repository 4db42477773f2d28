/**
 * Adaptive clipping (Andrew, Thakkar, McMahan & Ramaswamy 2021, "Differentially Private Learning
 * with Adaptive Clipping"): the clip norm C tracks the `targetQuantile` (gamma) of update norms.
 * Each round every participant contributes the bit b_i = [||delta_i|| <= C]; the server releases
 * b = (sum b_i + N(0, sigma_b^2)) / E and sets C <- C * exp(-eta * (b - gamma)) (geometric update).
 * So that the pair (update, bit count) has overall noise multiplier z, the update uses
 *   z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2), which needs 2 sigma_b > z (checked by the factory).
 * Defaults follow the paper: gamma 0.5, eta 0.2, sigma_b = E / 20.
 */
export interface AdaptiveClipOptions {
  targetQuantile: number;
  learningRate: number;
  clippedCountStddev: number;
}

export function updateNoiseMultiplier(z: number, clippedCountStddev: number): number {
  if (z === 0) return 0;
  const inv = z ** -2 - (2 * clippedCountStddev) ** -2;
  if (!(inv > 0)) throw new RangeError('adaptive clipping needs 2 * clippedCountStddev > noiseMultiplier');
  return inv ** -0.5;
}

/** The next clip norm from the noisy fraction of unclipped updates. */
export function nextClipNorm(clip: number, noisyUnclippedFraction: number, o: AdaptiveClipOptions): number {
  return clip * Math.exp(-o.learningRate * (noisyUnclippedFraction - o.targetQuantile));
}
