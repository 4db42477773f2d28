import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { modelFromSpec, setFlatWeights, tfjsToOnnx } from '@flotilla/model';
import { ApiClient } from '../../server/src/cli/api-client.js';
import { distill } from '../../server/src/cli/distill.js';
import { loadOnnxRuntime } from '../../server/src/serving/onnx-runtime.js';
import { httpCall } from '../helpers/http-call.js';
import { ADMIN, referencePredict, rowsOf, tinyWeights, type ServingHarness } from './serving-helpers.js';

/** A deployment target as the deployment schema takes it: a version (or alias) and a variant. */
export interface FormatTarget {
  ref: string;
  variant?: 'distilled';
}

/**
 * One model format as the serving surface sees it, prepared on a running server: model `model`
 * with two distinct servable targets (A on version 1, B on version 2, B also what `latest`
 * serves), all of them taking `hidden_input` [-1, 8] FP32 and answering `logits` [-1, 3].
 */
export interface FormatModels {
  model: string;
  targets: [FormatTarget, FormatTarget];
  /** The reference answer of target `i` for `rows`, computed in the test with tfjs, never by the server. */
  reference(i: 0 | 1, rows: number[][]): Promise<number[][]>;
  /** OIP metadata's `platform`. */
  platform: 'tensorflowjs' | 'onnxruntime';
  /** `format` in GET /api/v1/serving. */
  servingFormat: 'tfjs' | 'onnx';
  /** What `?variant=int8` on a version of this format answers: served, or the coded error. */
  int8: 'served' | { status: number; code: string } | null;
  /** `instances.backend` in GET /api/v1/serving once the format runs in instances. */
  instancesBackend: RegExp;
}

export interface ServedFormat {
  name: string;
  /** Why this format cannot run here (printed, and its suite skipped); null when it can. */
  skip: string | null;
  setup(h: ServingHarness, url: string): Promise<FormatModels>;
}

/** tfjs: two versions of tiny-mlp published to the registry. */
export const tfjsFormat: ServedFormat = {
  name: 'tfjs',
  skip: null,
  async setup(h) {
    const { spec, weights } = await h.publishTiny('tiny', 2);
    return {
      model: 'tiny',
      targets: [{ ref: '1' }, { ref: '2' }],
      reference: (i, rows) => referencePredict(spec, weights[i], rows),
      platform: 'tensorflowjs',
      servingFormat: 'tfjs',
      int8: 'served',
      instancesBackend: /wasm|cpu|tensorflow/,
    };
  },
};

let ortMissing: string | null = null;
try {
  await loadOnnxRuntime();
} catch (err) {
  ortMissing = `onnxruntime-node cannot be loaded here (${(err as Error).message})`;
}

/** ONNX: the same two tiny-mlp weight sets exported with tfjsToOnnx and uploaded over REST; tfjs's own predict is the reference. */
export const onnxFormat: ServedFormat = {
  name: 'ONNX',
  skip: ortMissing,
  async setup(_h, url) {
    const { spec, weights } = tinyWeights(2);
    for (const w of weights) {
      const m = await tf.models.modelFromJSON({ modelTopology: spec.topology } as unknown as tf.io.ModelJSON);
      setFlatWeights(m, w, spec.manifest);
      const bytes = tfjsToOnnx(m);
      m.dispose();
      const res = await fetch(`${url}/api/v1/models/tiny-onnx/versions`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/onnx' }, body: Buffer.from(bytes) });
      if (res.status !== 201) throw new Error(`ONNX upload answered ${res.status}: ${await res.text()}`);
    }
    return {
      model: 'tiny-onnx',
      targets: [{ ref: '1' }, { ref: '2' }],
      reference: (i, rows) => referencePredict(spec, weights[i], rows),
      platform: 'onnxruntime',
      servingFormat: 'onnx',
      int8: { status: 404, code: 'FL_ERR_VARIANT_NOT_FOUND' },
      instancesBackend: /^onnxruntime-cpu$/,
    };
  },
};

/**
 * A distilled student served as a variant: two tiny-mlp teachers, each distilled by the code path
 * `flotilla models distill` runs (cli/distill.ts, over this server's REST API) into an `mlp:4`
 * student on 200 unlabelled rows for two epochs (its agreement is not the point: serving it is).
 * The reference is tfjs's predict of the student rebuilt from the registry's stored spec and weights.
 */
export const studentFormat: ServedFormat = {
  name: 'distilled student',
  skip: null,
  async setup(h, url) {
    await h.publishTiny('teach', 2);
    const csv = join(mkdtempSync(join(tmpdir(), 'flotilla-formats-')), 'rows.csv');
    writeFileSync(csv, rowsOf(200, 5).map((r) => r.join(',')).join('\n'));
    const students: tf.LayersModel[] = [];
    for (const ref of ['1', '2']) {
      await distill(new ApiClient(url, ADMIN), { model: 'teach', ref, student: 'mlp:4', data: csv, temperature: 2, epochs: 2, batchSize: 32, alpha: 0, holdout: 0.2, learningRate: 0.01, progress: () => undefined });
      const rec = await h.app.flotilla.registry.getVersion('teach', Number(ref));
      const spec = await h.app.flotilla.registry.specOf(rec, 'distilled');
      const student = await modelFromSpec(spec);
      setFlatWeights(student, await h.app.flotilla.registry.readWeights(rec, 'distilled'), spec.manifest);
      students.push(student);
    }
    rmSync(dirname(csv), { recursive: true, force: true });
    const v = await httpCall(url, 'GET', '/api/v1/models/teach/versions/1', ADMIN);
    if (!v.json.artifacts.some((a: { name: string }) => a.name === 'weights.distilled')) throw new Error('distill stored no student');
    return {
      model: 'teach',
      targets: [
        { ref: '1', variant: 'distilled' },
        { ref: '2', variant: 'distilled' },
      ],
      reference: async (i, rows) => tf.tidy(() => (students[i].predict(tf.tensor2d(rows)) as tf.Tensor).arraySync() as number[][]),
      platform: 'tensorflowjs',
      servingFormat: 'tfjs',
      int8: null,
      instancesBackend: /wasm|cpu|tensorflow/,
    };
  },
};
