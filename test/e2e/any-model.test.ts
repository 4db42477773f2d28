import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaClient, LocalTrainer, type CustomTrain, type FitEvent, type LocalData } from '@flotilla/client';
import { resolveBackend, specOf } from '@flotilla/model';
import { layersModelJson, type TaskPlanInput } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { nextEvent, startServer } from '../helpers/server.js';

/**
 * Any model, any data, end to end over real sockets: regression and multi-label losses, tensors,
 * nested arrays and tf.data datasets, a fine-tune of a registry version that trains only its head
 * (frozen weights bit-identical, only the head's bytes uploaded), and a custom training loop
 * whose update is exactly what the server receives.
 */
function dense(name: string, inputShape: number[], units: number[], activation: 'softmax' | 'sigmoid' | 'linear'): tf.LayersModel {
  const layers: tf.layers.Layer[] = inputShape.length > 1 ? [tf.layers.flatten({ name: `${name}_flat`, inputShape })] : [];
  units.forEach((u, i) =>
    layers.push(tf.layers.dense({ name: i === units.length - 1 ? 'head' : `${name}_h${i}`, units: u, activation: i === units.length - 1 ? activation : 'relu', ...(i === 0 && inputShape.length === 1 ? { inputShape } : {}) })),
  );
  return tf.sequential({ name, layers });
}

const rng = (seed: number) => () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296) * 2 - 1;

describe('any model and any data', () => {
  let app: FlotillaApp;
  let url: string;
  const clients: FlotillaClient[] = [];
  beforeAll(async () => {
    await resolveBackend('node');
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await app?.close();
  });

  /** A server with a task made from `model`, one device with `data`, one round; returns the round and the weights before and after. */
  async function oneRound(model: tf.LayersModel, plan: Partial<TaskPlanInput>, data: () => LocalData, extra: { train?: CustomTrain; fromVersion?: boolean } = {}) {
    ({ app, url } = await startServer());
    const co = app.flotilla.coordinator;
    const { spec, weights } = specOf(model, model.outputs[0].shape[1] as number);
    const full = { clientsPerRound: 1, overSelect: 1, maxRounds: 1, roundDeadlineMs: 60_000, batchSize: 4, ...plan };
    if (extra.fromVersion) {
      await co.createTask({ id: 'base', spec, weights, plan: { clientsPerRound: 1 } });
      await app.flotilla.registry.setAlias('base', 'production', 1, 'test');
      await co.createTask({ id: 't', fromVersion: { model: 'base', ref: 'production' }, plan: full });
    } else {
      await co.createTask({ id: 't', spec, weights, plan: full });
    }
    const fits: FitEvent[] = [];
    const errors: unknown[] = [];
    const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: 't', data: { train: data }, ...(extra.train ? { train: extra.train } : {}) });
    const fitted = new Promise<void>((resolve) => c.on('fit', (e) => (fits.push(e), resolve())));
    c.on('error', (e) => errors.push(e));
    clients.push(c);
    await c.start();
    const round = nextEvent<RoundRecord>(co.events, 'round', () => true, 50_000);
    await co.startTask('t');
    const r = await round;
    if (r.state === 'done') await fitted;
    const reg = app.flotilla.registry;
    const before = await reg.readWeights(await reg.getVersion('t', 1));
    const after = r.state === 'done' ? await reg.readWeights(await reg.getVersion('t', 2)) : undefined;
    return { r, before, after, fits, errors, task: (await app.flotilla.store.getTask('t'))! };
  }

  it('trains a regression model with meanSquaredError and reports mae (flat rows with real-valued labels)', async () => {
    const model = dense('reg', [5], [8, 1], 'linear');
    const r = rng(3);
    const n = 40;
    const x = new Float32Array(n * 5).map(() => r());
    const y = new Float32Array(n).map((_, i) => 2 * x[i * 5] - x[i * 5 + 1]);
    const out = await oneRound(model, { loss: 'meanSquaredError', learningRate: 0.05 }, () => ({ x, y, inputSize: 5 }));
    expect(out.errors).toEqual([]);
    expect(out.r.state).toBe('done');
    expect(out.r.trainMetrics.loss).toBeGreaterThan(0);
    expect(out.r.trainMetrics.mae).toBeGreaterThan(0);
    expect(out.task.plan.loss).toBe('meanSquaredError');
  });

  it('trains a multi-label model with binaryCrossentropy from nested arrays with an input shape', async () => {
    const model = dense('ml', [3, 2], [6, 4], 'sigmoid');
    const r = rng(5);
    const xs = Array.from({ length: 12 }, () => Array.from({ length: 6 }, () => r()));
    const ys = xs.map((row) => [row[0] > 0, row[1] > 0, row[2] > 0, row[3] + row[4] > 0].map(Number));
    const out = await oneRound(model, { loss: 'binaryCrossentropy' }, () => ({ xs, ys, inputShape: [3, 2], labels: 'multiLabel' }));
    expect(out.errors).toEqual([]);
    expect(out.r.state).toBe('done');
    expect(out.r.trainMetrics.accuracy).toBeGreaterThan(0);
    expect(out.fits[0].numExamples).toBe(12);
  });

  it('trains on a tf.data.Dataset of image-shaped examples with class ids and sparseCategoricalCrossentropy', async () => {
    const model = dense('img', [4, 4, 1], [3], 'softmax');
    const r = rng(7);
    const examples = Array.from({ length: 18 }, (_, i) => ({ x: Array.from({ length: 16 }, () => r()), y: i % 3 }));
    const data = () => tf.data.array(examples).map((e) => {
      const ex = e as { x: number[]; y: number };
      return { xs: tf.tensor(ex.x, [4, 4, 1]), ys: tf.scalar(ex.y, 'int32') };
    });
    const out = await oneRound(model, { loss: 'sparseCategoricalCrossentropy', epochs: 2 }, data as () => LocalData);
    expect(out.errors).toEqual([]);
    expect(out.r.state).toBe('done');
    expect(out.fits[0].numExamples).toBe(18);
  });

  it('fine-tunes a registry version: only the head trains and travels, frozen weights stay bit-identical, lineage names the parent', async () => {
    const model = dense('ft', [6], [32, 16, 3], 'softmax');
    const r = rng(11);
    const x = new Float32Array(30 * 6).map(() => r());
    const y = new Int32Array(30).map((_, i) => i % 3);
    const out = await oneRound(model, { trainableLayers: ['head'], learningRate: 0.5 }, () => ({ x, y, inputSize: 6 }), { fromVersion: true });
    expect(out.errors).toEqual([]);
    expect(out.r.state).toBe('done');
    const m = out.task.spec.manifest;
    const head = m.filter((s) => s.trainable !== false);
    expect(head.map((s) => s.name).sort()).toEqual(['head/bias', 'head/kernel']);
    const headFloats = head.reduce((a, s) => a + s.size, 0);
    expect(headFloats).toBe(16 * 3 + 3);
    // Bytes uploaded: the f32 codec's 12-byte header plus the head's floats, nothing of the base.
    expect(out.fits[0].bytesUp).toBe(12 + 4 * headFloats);
    expect(out.r.bytesUp).toBe(12 + 4 * headFloats);
    for (const s of m) {
      const a = Buffer.from(out.before.buffer, out.before.byteOffset + 4 * s.offset, 4 * s.size);
      const b = Buffer.from(out.after!.buffer, out.after!.byteOffset + 4 * s.offset, 4 * s.size);
      if (s.trainable === false) expect(b.equals(a), s.name).toBe(true);
      else expect(b.equals(a), s.name).toBe(false);
    }
    const v1 = await app.flotilla.registry.getVersion('t', 1);
    expect(v1).toMatchObject({ parentModel: 'base', parentVersion: 1 });
    const res = await fetch(`${url}/api/v1/models/t/versions/2/lineage`, { headers: { authorization: `Bearer ${app.flotilla.adminToken}` } });
    expect(((await res.json()) as any).lineage.map((e: any) => `${e.model}@${e.version}`)).toEqual(['t@2', 't@1', 'base@1']);
  });

  it('reports exactly the update of a custom training loop (numExamples and metrics as it returns them)', async () => {
    const model = dense('cu', [4], [5, 2], 'softmax');
    const seen: string[] = [];
    const train: CustomTrain = async (m, _data, plan) => {
      seen.push(`${plan.loss}/${plan.epochs}`);
      for (const w of m.trainableWeights) w.write(tf.tidy(() => w.read().add(0.5)));
      return { numExamples: 7, metrics: { custom: 1.25 } };
    };
    const x = new Float32Array(7 * 4);
    const out = await oneRound(model, { trainableLayers: ['head'], epochs: 3 }, () => ({ x, y: new Uint8Array(7), inputSize: 4 }), { train });
    expect(out.errors).toEqual([]);
    expect(out.r.state).toBe('done');
    expect(seen).toEqual(['categoricalCrossentropy/3']);
    expect(out.fits[0].numExamples).toBe(7);
    expect(out.r.trainMetrics.custom).toBe(1.25);
    for (const s of out.task.spec.manifest) {
      for (let i = s.offset; i < s.offset + s.size; i++) {
        const want = s.trainable === false ? out.before[i] : Math.fround(out.before[i] + 0.5);
        expect(out.after![i], s.name).toBeCloseTo(want, 6);
      }
    }
  });

  it('refuses data that does not fit the model with coded errors before training', async () => {
    const model = dense('bad', [4], [3], 'softmax');
    const { spec, weights } = specOf(model, 3);
    const trainer = new LocalTrainer();
    const loaded = await trainer.load('mem://bad', { json: async () => layersModelJson(spec, 'w.bin'), bytes: async () => new Uint8Array() });
    const plan = { epochs: 1, batchSize: 2, learningRate: 0.1, optimizer: 'sgd', codec: 'f32', proximalMu: 0, loss: 'categoricalCrossentropy', metrics: ['accuracy'] } as const;
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e) => e.code);
    const fit = (d: LocalData, loss: 'categoricalCrossentropy' | 'meanSquaredError' = 'categoricalCrossentropy') => code(trainer.fit(loaded, weights, d, { ...plan, loss, metrics: [] }));
    expect(await fit({ xs: [[1, 2, 3, 4]], ys: [2] })).toBe('ok');
    const tensors = tf.memory().numTensors;
    expect(await fit({ x: new Float32Array(10), y: new Uint8Array(2), inputSize: 5 })).toBe('FL_ERR_DATA_BAD_SHAPE');
    expect(await fit({ x: new Float32Array(12), y: new Uint8Array(2), inputSize: 4 })).toBe('FL_ERR_DATA_BAD_LABELS');
    expect(await fit({ x: new Float32Array(8), y: new Uint8Array([0, 7]), inputSize: 4 })).toBe('FL_ERR_DATA_BAD_LABELS');
    expect(await fit({ xs: [[1, 2, 3]], ys: [0] })).toBe('FL_ERR_DATA_BAD_SHAPE');
    expect(await fit({ xs: [[1, 2, 3, 4]], ys: [[0.5, 0.5]] }, 'meanSquaredError')).toBe('FL_ERR_DATA_BAD_LABELS');
    expect(await fit({ xs: [[1, 2, 3, 4], [1, 2, 3, 4]], ys: [1] })).toBe('FL_ERR_DATA_BAD_LABELS');
    // Refused data leaves no tensors behind.
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
