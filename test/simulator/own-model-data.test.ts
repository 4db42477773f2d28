import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveBackend } from '@flotilla/model';
import { CliUsageError, parseCliOptions, type SimOptions } from '../../simulator/src/cli-options.js';
import { loadDataFile } from '../../simulator/src/data-file.js';
import { runSimulation } from '../../simulator/src/simulation.js';
import { saveModelDir } from '../helpers/model-dir.js';

/** flotilla-sim --model-dir DIR --data FILE: the user's own model and data (CSV or an IDX pair) with the usual partitions. */
describe('simulating your own model and data', () => {
  let dir: string;
  beforeAll(async () => {
    await resolveBackend('node');
    dir = await mkdtemp(join(tmpdir(), 'flotilla-own-'));
    // Regression data: y = x0 - 2 x1 + 0.5, with a header row.
    const rows = ['a,b,c,target'];
    for (let i = 0; i < 200; i++) {
      const [a, b, c] = [Math.sin(i), Math.cos(i * 1.3), Math.sin(i * 0.7)];
      rows.push(`${a},${b},${c},${a - 2 * b + 0.5}`);
    }
    await writeFile(join(dir, 'reg.csv'), rows.join('\n'));
    await saveModelDir(tf.sequential({ name: 'reg', layers: [tf.layers.dense({ name: 'hidden', inputShape: [3], units: 8, activation: 'relu' }), tf.layers.dense({ name: 'out', units: 1 })] }), join(dir, 'reg-model'));
    // A 4x4 image classification set as an IDX pair (3 classes), and a CNN-free model over [4, 4].
    const n = 120;
    const img = Buffer.alloc(16 + n * 16);
    img.writeUInt32BE(0x803, 0);
    img.writeUInt32BE(n, 4);
    img.writeUInt32BE(4, 8);
    img.writeUInt32BE(4, 12);
    const lab = Buffer.alloc(8 + n);
    lab.writeUInt32BE(0x801, 0);
    lab.writeUInt32BE(n, 4);
    for (let i = 0; i < n; i++) {
      const c = i % 3;
      lab[8 + i] = c;
      for (let p = 0; p < 16; p++) img[16 + i * 16 + p] = p % 3 === c ? 200 : 20;
    }
    await writeFile(join(dir, 'img.idx'), img);
    await writeFile(join(dir, 'lab.idx'), lab);
    await saveModelDir(tf.sequential({ name: 'img', layers: [tf.layers.flatten({ name: 'flat', inputShape: [4, 4] }), tf.layers.dense({ name: 'base', units: 12, activation: 'relu' }), tf.layers.dense({ name: 'head', units: 3, activation: 'softmax' })] }), join(dir, 'img-model'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const opts = (args: string[]): SimOptions => {
    const o = parseCliOptions(['--workers', '2', '--quiet', ...args]);
    if (o === 'help') throw new Error('help');
    return o;
  };
  const progress = { round() {}, log() {}, stop() {} };

  it('loads a CSV with a header into shared train and test rows; class ids or real values by the label column', () => {
    const d = loadDataFile(join(dir, 'reg.csv'), { testFraction: 0.25 });
    expect(d).toMatchObject({ inputSize: 3, labelSize: 1, labels: 'values' });
    expect([d.train.n, d.test.n]).toEqual([150, 50]);
    expect(d.train.x.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(d.train.y[0]).toBeCloseTo(Math.sin(0) - 2 * Math.cos(0) + 0.5, 5);
    const idx = loadDataFile(`${join(dir, 'img.idx')}:${join(dir, 'lab.idx')}`);
    expect(idx).toMatchObject({ inputSize: 16, labels: 'classIds', numClasses: 3 });
    expect([idx.train.n, idx.test.n]).toEqual([96, 24]);
  });

  it('refuses a ragged CSV and a non-numeric label with coded errors naming the row', async () => {
    await writeFile(join(dir, 'ragged.csv'), '1,2,3\n4,5\n');
    expect(() => loadDataFile(join(dir, 'ragged.csv'))).toThrow(expect.objectContaining({ code: 'FL_ERR_DATA_BAD_SHAPE', details: expect.objectContaining({ row: 2 }) }));
    await writeFile(join(dir, 'label.csv'), '1,2,0\n4,5,x\n');
    expect(() => loadDataFile(join(dir, 'label.csv'))).toThrow(expect.objectContaining({ code: 'FL_ERR_DATA_BAD_LABELS' }));
    expect(() => parseCliOptions(['--data', 'x.csv'])).toThrow(CliUsageError);
  });

  it('runs FedAvg rounds of a regression model from --model-dir on --data reg.csv (meanSquaredError, mae)', async () => {
    const r = await runSimulation(opts(['--model-dir', join(dir, 'reg-model'), '--data', join(dir, 'reg.csv'), '--clients', '4', '--clients-per-round', '2', '--rounds', '2', '--lr', '0.05', '--eval-clients', '0']), { progress, noFiles: true });
    expect(r.results.rounds.map((x) => x.failed)).toEqual([false, false]);
    expect((r.results.config as any).plan.loss).toBe('meanSquaredError');
  });

  it('trains only the head of an IDX-fed classifier with the label-skewed shards partition', async () => {
    const records: any[] = [];
    const r = await runSimulation(opts(['--model-dir', join(dir, 'img-model'), '--data', `${join(dir, 'img.idx')}:${join(dir, 'lab.idx')}`, '--partition', 'shards', '--clients', '4', '--clients-per-round', '2', '--rounds', '2', '--trainable-layers', 'head', '--eval-clients', '0']), { progress, noFiles: true, onRecord: (x) => records.push(x) });
    // Two rounds, unless the first already reached the 0.97 target on the 24 test rows (it did once in CI).
    const rounds = r.results.rounds;
    expect(rounds.every((x) => !x.failed)).toBe(true);
    if (rounds.length < 2) expect(rounds[0].accuracy).toBeGreaterThanOrEqual(0.97);
    else expect(rounds.length).toBe(2);
    // Each report: the f32 header plus the head's 12*3+3 floats.
    for (const x of records) expect(x.bytesUp).toBe(2 * (12 + 4 * (12 * 3 + 3)));
    // Central evaluation ran on the IDX test rows (its value after two rounds from a random base varies).
    expect(records[records.length - 1].centralMetrics.accuracy).toBeTypeOf('number');
  });
});
