import { readFileSync } from 'node:fs';
import { AppError } from '@flotilla/protocol';
import { parseIdxImages, parseIdxLabels } from './mnist.js';

/**
 * A user's own data for flotilla-sim --data: a CSV file (one example per row, the last
 * `labelColumns` columns are the labels, an optional header row) or an IDX pair
 * (`images.idx:labels.idx`, the format MNIST ships in; pixels scaled to [0, 1]). Rows are split
 * into training rows and the last `testFraction` of them for central evaluation, all in shared
 * memory (see mnist.ts) so that worker threads share one copy.
 *
 * Labels: a single label column whose values are all non-negative integers holds class ids
 * (numClasses = max + 1); anything else is real-valued targets (regression, multi-label).
 * Bad files throw FL_ERR_DATA_BAD_SHAPE / FL_ERR_DATA_BAD_LABELS naming the row.
 */
export interface SimSplit {
  x: Float32Array;
  y: Uint8Array | Float32Array;
  n: number;
}

export interface SimData {
  train: SimSplit;
  test: SimSplit;
  inputSize: number;
  /** Values per label row (1 for class ids). */
  labelSize: number;
  labels: 'classIds' | 'values';
  /** With class ids: how many classes. */
  numClasses: number;
  /** One class id per training row for the label-skewed partitions (all zero for real-valued labels). */
  partitionLabels: Uint8Array;
}

export interface DataFileOptions {
  labelColumns?: number;
  testFraction?: number;
}

function sharedF32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(4 * n));
}

function parseCsv(text: string, labelColumns: number): { x: Float32Array; y: Float32Array; n: number; inputSize: number } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length && lines[0].split(',').some((c) => c.trim() !== '' && Number.isNaN(Number(c)))) lines.shift();
  if (!lines.length) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: 'the CSV file has no rows' });
  const width = lines[0].split(',').length;
  const inputSize = width - labelColumns;
  if (inputSize < 1) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: `rows have ${width} columns; ${labelColumns} are labels, none left for features` });
  const x = sharedF32(lines.length * inputSize);
  const y = sharedF32(lines.length * labelColumns);
  lines.forEach((line, r) => {
    const cells = line.split(',');
    if (cells.length !== width) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { row: r + 1, why: `${cells.length} columns, the first row has ${width}` });
    cells.forEach((c, i) => {
      const v = Number(c);
      if (c.trim() === '' || !Number.isFinite(v)) throw new AppError(i < inputSize ? 'FL_ERR_DATA_BAD_SHAPE' : 'FL_ERR_DATA_BAD_LABELS', { row: r + 1, column: i + 1, value: c.slice(0, 40) });
      if (i < inputSize) x[r * inputSize + i] = v;
      else y[r * labelColumns + i - inputSize] = v;
    });
  });
  return { x, y, n: lines.length, inputSize };
}

function split<T extends Float32Array | Uint8Array>(a: T, per: number, from: number, to: number): T {
  const Ctor = a.constructor as { new (b: SharedArrayBuffer): T };
  const out = new Ctor(new SharedArrayBuffer((to - from) * per * a.BYTES_PER_ELEMENT));
  out.set(a.subarray(from * per, to * per) as never);
  return out;
}

export function loadDataFile(spec: string, opts: DataFileOptions = {}): SimData {
  const labelColumns = opts.labelColumns ?? 1;
  const testFraction = opts.testFraction ?? 0.2;
  let x: Float32Array;
  let yAll: Float32Array | Uint8Array;
  let n: number;
  let inputSize: number;
  if (/\.csv$/i.test(spec)) {
    ({ x, y: yAll, n, inputSize } = parseCsv(readFileSync(spec, 'utf8'), labelColumns));
  } else {
    const cut = spec.includes(',') ? spec.indexOf(',') : spec.lastIndexOf(':');
    const [images, labels] = cut > 0 ? [spec.slice(0, cut), spec.slice(cut + 1)] : [];
    if (!images || !labels) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: '--data takes a .csv file or an IDX pair images:labels', got: spec });
    const buf = readFileSync(images);
    ({ x, n } = parseIdxImages(buf));
    inputSize = buf.readUInt32BE(8) * buf.readUInt32BE(12);
    yAll = parseIdxLabels(readFileSync(labels));
    if (yAll.length !== n) throw new AppError('FL_ERR_DATA_BAD_LABELS', { examples: n, labels: yAll.length, why: 'one label per image' });
  }
  const ids = labelColumns === 1 && Array.prototype.every.call(yAll, (v: number) => Number.isInteger(v) && v >= 0 && v < 256);
  const y = ids && yAll instanceof Float32Array ? Uint8Array.from(yAll) : yAll;
  const nTest = Math.max(1, Math.floor(n * testFraction));
  if (n - nTest < 1) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: `${n} rows leave nothing to train on after the test split` });
  const nTrain = n - nTest;
  const per = ids ? 1 : labelColumns;
  const train = { x: split(x, inputSize, 0, nTrain), y: split(y, per, 0, nTrain), n: nTrain };
  const test = { x: split(x, inputSize, nTrain, n), y: split(y, per, nTrain, n), n: nTest };
  const numClasses = ids ? Math.max(...(y as Uint8Array)) + 1 : 1;
  return { train, test, inputSize, labelSize: per, labels: ids ? 'classIds' : 'values', numClasses, partitionLabels: ids ? (train.y as Uint8Array) : new Uint8Array(nTrain) };
}
