import type { Dataset } from '@flotilla/client';

/**
 * A learnable 3-class problem on 8 features (class = argmax of three fixed linear scores), seeded,
 * for tests that need real training without MNIST. Matches the tiny-mlp preset's shapes.
 */
export function synthetic(n: number, seed: number): Dataset {
  let s = seed;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const x = new Float32Array(n * 8);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 8; j++) x[i * 8 + j] = rand();
    const f = x.subarray(i * 8, i * 8 + 8);
    const scores = [f[0] + f[1], f[2] - f[3], f[4] + f[5] - f[6]];
    y[i] = scores.indexOf(Math.max(...scores));
  }
  return { x, y, inputSize: 8, numClasses: 3 };
}
