import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flatWeights, resolveBackend } from '@flotilla/model';
import { gatherTrainable } from '@flotilla/protocol';
import { adminApp, type AdminHarness } from '../admin/admin-helpers.js';
import { saveModelDir, tarBytes } from '../helpers/model-dir.js';

/** A small functional model: 6 inputs -> dense(5) -> dense 'head'(3, softmax). */
function smallModel(): tf.LayersModel {
  const input = tf.input({ shape: [6], name: 'features' });
  const h = tf.layers.dense({ units: 5, activation: 'relu', name: 'base' }).apply(input) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'small' });
}

const TAR = { 'content-type': 'application/x-tar' };

/**
 * POST /api/v1/models/{name}/versions: a TensorFlow.js LayersModel directory as a tar. Every bad
 * upload answers a code that names the problem and leaves the registry without the model.
 */
describe('model import over REST', () => {
  let h: AdminHarness;
  let dir: string;
  let model: tf.LayersModel;

  beforeAll(async () => {
    await resolveBackend('node');
    h = await adminApp({ maxUploadBytes: 200_000 });
    dir = await mkdtemp(join(tmpdir(), 'flotilla-import-test-'));
    model = smallModel();
  });
  afterAll(async () => {
    await h.app.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function variant(name: string, opts: Parameters<typeof saveModelDir>[2] = {}, after?: (d: string) => Promise<void>): Promise<Buffer> {
    const d = join(dir, name);
    await saveModelDir(model, d, opts);
    await after?.(d);
    return tarBytes(d);
  }
  const upload = (name: string, payload: Buffer | string, headers: Record<string, string> = TAR) => h.call({ method: 'POST', url: `/api/v1/models/${name}/versions`, payload, headers });
  const absent = async (name: string) => expect((await h.call({ method: 'GET', url: `/api/v1/models/${name}` })).status).toBe(404);

  it('imports model.json plus shards (manifest in any order) as a version whose flat weights are the shards in manifest order', async () => {
    const tar = await variant('good', { shardBytes: 40, edit: (j) => j.weightsManifest[0].weights.reverse() });
    // Reversing the manifest without moving bytes would mislabel them: rebuild the shards in that order.
    const d = join(dir, 'good');
    const specs = (JSON.parse(await (await import('node:fs/promises')).readFile(join(d, 'model.json'), 'utf8')) as any).weightsManifest[0];
    const byName = new Map(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
    const bytes = Buffer.concat(specs.weights.map((w: any) => Buffer.from(byName.get(w.name)!.buffer.slice(0))));
    for (let i = 0; i < specs.paths.length; i++) await writeFile(join(d, specs.paths[i]), bytes.subarray(i * 40, (i + 1) * 40));
    const res = await upload('small', await tarBytes(d));
    expect(tar.length).toBeGreaterThan(0);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ model: 'small', version: 1, tags: ['imported'], inputShape: [6], outputs: 3, weights: 4, trainableWeights: 4 });
    const reg = h.app.flotilla.registry;
    const stored = await reg.readWeights(await reg.getVersion('small', 1));
    expect(Buffer.from(stored.buffer).equals(bytes)).toBe(true);
    expect(stored.length).toBe(flatWeights(model).length);
    // The published model.json lists them in that order, and tfjs loads it with the model's values.
    const mj = await h.call({ method: 'GET', url: '/api/v1/models/small/versions/1/model.json' });
    expect(mj.json.weightsManifest[0].weights.map((w: any) => w.name)).toEqual(model.weights.map((w) => w.originalName).reverse());
    const loaded = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: mj.json.modelTopology, weightSpecs: mj.json.weightsManifest[0].weights, weightData: stored.buffer as ArrayBuffer }));
    expect(Buffer.from(flatWeights(loaded).buffer).equals(Buffer.from(flatWeights(model).buffer))).toBe(true);
  });

  it('finds model.json in a subdirectory of the archive', async () => {
    await saveModelDir(model, join(dir, 'nested', 'my-model'));
    const res = await upload('nested', await tarBytes(join(dir, 'nested')));
    expect(res.status).toBe(201);
  });

  const bad: Array<[string, () => Promise<Buffer | string>, string, number?]> = [
    ['a truncated weight file', () => variant('trunc', {}, (d) => truncate(join(d, 'group1-shard1of1.bin'), 50)), 'FL_ERR_MODEL_IMPORT_WEIGHTS'],
    ['weights longer than the manifest', () => variant('long', {}, async (d) => writeFile(join(d, 'group1-shard1of1.bin'), Buffer.alloc(4 * 53 + 8))), 'FL_ERR_MODEL_IMPORT_WEIGHTS'],
    ['a missing shard', () => variant('missing', { shardBytes: 100 }, (d) => rm(join(d, 'group1-shard2of3.bin'))), 'FL_ERR_MODEL_IMPORT_WEIGHTS'],
    ['a topology tfjs cannot build', () => variant('topo', { edit: (j) => (j.modelTopology.config.layers[1].class_name = 'NoSuchLayer') }), 'FL_ERR_MODEL_IMPORT_TOPOLOGY'],
    ['a manifest shape that disagrees with the topology', () => variant('shape', { edit: (j) => (j.weightsManifest[0].weights[0].shape = [5, 6]) }), 'FL_ERR_MODEL_IMPORT_WEIGHTS'],
    ['a manifest without a weight the topology has', () => variant('lack', { edit: (j) => j.weightsManifest[0].weights.pop() }), 'FL_ERR_MODEL_IMPORT_WEIGHTS'],
    ['float16 weights', () => variant('f16', { edit: (j) => (j.weightsManifest[0].weights[0].dtype = 'float16') }), 'FL_ERR_MODEL_IMPORT_WEIGHTS'],
    ['NaN in the weights', () => variant('nan', {}, async (d) => { const b = Buffer.alloc(4 * 53); b.writeFloatLE(NaN, 8); await writeFile(join(d, 'group1-shard1of1.bin'), b); }), 'FL_ERR_MODEL_IMPORT_WEIGHTS'],
    ['a model with no trainable layer', () => variant('frozen', { edit: (j) => j.modelTopology.config.layers.forEach((l: any) => (l.config.trainable = false)) }), 'FL_ERR_MODEL_IMPORT_NOT_TRAINABLE'],
    ['a graph model', () => variant('graph', { edit: (j) => { j.format = 'graph-model'; delete j.modelTopology; } }), 'FL_ERR_MODEL_IMPORT_TOPOLOGY'],
    ['no model.json', () => variant('nojson', {}, (d) => rm(join(d, 'model.json'))), 'FL_ERR_MODEL_IMPORT_TOPOLOGY'],
    ['a body that is not a tar', async () => Buffer.from('x'.repeat(2048)), 'FL_ERR_UPLOAD_MALFORMED'],
    ['an archive cut short', async () => (await variant('cut')).subarray(0, 1200), 'FL_ERR_UPLOAD_MALFORMED'],
    ['an upload over --max-upload-bytes', () => variant('big', {}, (d) => writeFile(join(d, 'extra.bin'), Buffer.alloc(300_000))), 'FL_ERR_UPLOAD_TOO_LARGE', 413],
  ];
  for (const [what, body, code, status] of bad) {
    it(`refuses ${what} with ${code} and stores nothing`, async () => {
      const name = `bad-${what.replace(/[^a-z0-9]+/gi, '-')}`;
      const res = await upload(name, await body());
      expect(res.status).toBe(status ?? 400);
      expect(res.json.error.code).toBe(code);
      await absent(name);
    });
  }

  it('refuses a JSON body with 415 (weights never travel as base64 JSON here)', async () => {
    const res = await upload('json', JSON.stringify({ weights: 'AAAA' }), { 'content-type': 'application/json' });
    expect(res.status).toBe(415);
    expect(res.json.error.code).toBe('FL_ERR_HTTP_UNSUPPORTED_MEDIA');
    await absent('json');
  });

  it('needs an admin token', async () => {
    const res = await h.call({ method: 'POST', url: '/api/v1/models/x/versions', payload: await variant('auth'), headers: TAR, token: h.viewer });
    expect(res.status).toBe(403);
    await absent('x');
  });

  it('creates tasks from the import with a plan\'s trainableLayers, loss and metrics, refusing bad ones before anything is stored', async () => {
    const create = (id: string, plan: Record<string, unknown>) => h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id, fromVersion: 'small@1', plan: { clientsPerRound: 1, ...plan } } });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ loss: 'noSuchLoss' }, 'FL_ERR_TASK_INVALID_SPEC'],
      [{ loss: 'meanSquaredError', metrics: ['accuracy'] }, 'FL_ERR_TASK_INVALID_SPEC'],
      [{ trainableLayers: ['nope'] }, 'FL_ERR_MODEL_IMPORT_NOT_TRAINABLE'],
    ];
    for (const [plan, code] of cases) {
      const res = await create('bad-plan', plan);
      expect(res.json.error.code, JSON.stringify(plan)).toBe(code);
      expect(await h.app.flotilla.store.getTask('bad-plan')).toBeNull();
    }
    const missing = await h.call({ method: 'POST', url: '/api/v1/tasks', payload: { id: 'nomodel', fromVersion: 'nosuch@1', plan: { clientsPerRound: 1 } } });
    expect(missing.json.error.code).toBe('FL_ERR_MODEL_NOT_FOUND');

    const ok = await create('head-only', { trainableLayers: ['head'], loss: 'sparseCategoricalCrossentropy' });
    expect(ok.status, JSON.stringify(ok.json)).toBe(201);
    const task = (await h.app.flotilla.store.getTask('head-only'))!;
    expect(Object.fromEntries(task.spec.manifest.map((s) => [s.name, s.trainable !== false]))).toEqual({ 'base/kernel': false, 'base/bias': false, 'head/kernel': true, 'head/bias': true });
    const w = h.app.flotilla.coordinator.getRunner('head-only').globalWeights;
    expect(gatherTrainable(w, task.spec.manifest).length).toBe(5 * 3 + 3);
    const v1 = await h.app.flotilla.registry.getVersion('head-only', 1);
    expect(v1).toMatchObject({ parentModel: 'small', parentVersion: 1 });
    const lineage = await h.call({ method: 'GET', url: '/api/v1/models/head-only/versions/latest/lineage', token: h.viewer });
    expect(lineage.json.lineage.map((e: any) => `${e.model}@${e.version}`)).toEqual(['head-only@1', 'small@1']);
  });
});
