import { createRng, gaussian, type Rng } from '../rng.js';

/**
 * Randomness for DP noise. Without a seed: uniform draws from the platform CSPRNG
 * (crypto.getRandomValues), as the privacy guarantee needs unpredictable noise. With a seed: the
 * seeded mulberry32 generator, for reproducible experiments only; a seeded run is not private
 * against anyone who knows the seed.
 */
export function noiseRng(seed: number | undefined, round: number): Rng {
  if (seed !== undefined) return createRng((Math.imul(seed, 0x9e3779b1) ^ round) >>> 0);
  const buf = new Uint32Array(1024);
  let at = buf.length;
  return () => {
    if (at === buf.length) {
      globalThis.crypto.getRandomValues(buf);
      at = 0;
    }
    return buf[at++] / 4294967296;
  };
}

/** Adds N(0, std^2) to every coordinate of x in place. */
export function addGaussianNoise(x: Float32Array | Float64Array, std: number, rng: Rng): void {
  if (std === 0) return;
  for (let i = 0; i < x.length; i++) x[i] += std * gaussian(rng);
}
