import type { InjectOptions } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import { buildPreset, specOf } from '@flotilla/model';
import type { ModelSpec } from '@flotilla/protocol';
import { buildApp, MemoryBlobStore, MemoryStore, type AppOptions, type FlotillaApp } from '@flotilla/server';

export const ADMIN = 'admin-token-for-serving-tests-0123';
export const DEVICE = 'device-token-for-serving-tests-0123';

export interface ServingHarness {
  app: FlotillaApp;
  /** app.inject with the admin token unless `token` (null: none); JSON bodies as objects. */
  call(o: Omit<InjectOptions, 'body'> & { token?: string | null; json?: unknown }): Promise<{ status: number; json: any; headers: Record<string, unknown> }>;
  /** Publish `versions` versions of tiny-mlp (8 features, 3 classes) under `model`; returns their weights. */
  publishTiny(model: string, versions?: number): Promise<{ spec: ModelSpec; weights: Float32Array[] }>;
}

/** An in-memory app (or one over `opts.store`) with the admin token, serving with the given options. */
export async function servingApp(opts: AppOptions = {}): Promise<ServingHarness> {
  const app = await buildApp({
    store: new MemoryStore(),
    blobs: new MemoryBlobStore(),
    adminToken: ADMIN,
    deviceToken: DEVICE,
    processMetrics: false,
    authRateLimit: false,
    ...opts,
  });
  const call: ServingHarness['call'] = async ({ token, json: body, ...o }) => {
    const t = token === undefined ? ADMIN : token;
    const headers = { ...(o.headers ?? {}), ...(t !== null ? { authorization: `Bearer ${t}` } : {}) } as Record<string, string>;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await app.inject({ ...o, headers, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) } as InjectOptions);
    let json: unknown;
    try {
      json = res.json();
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, headers: res.headers as Record<string, unknown> };
  };
  const publishTiny: ServingHarness['publishTiny'] = async (model, versions = 1) => {
    const tiny = tinyWeights(versions);
    for (const weights of tiny.weights) await app.flotilla.registry.publish({ model, spec: tiny.spec, weights });
    return tiny;
  };
  return { app, call, publishTiny };
}

/** tiny-mlp (8 features, 3 classes) and `versions` distinct weight sets: scaled and shifted copies of one initialisation. */
export function tinyWeights(versions: number): { spec: ModelSpec; weights: Float32Array[] } {
  const preset = buildPreset('tiny-mlp');
  const { spec, weights } = specOf(preset.model, preset.numClasses);
  preset.model.dispose();
  return { spec, weights: Array.from({ length: versions }, (_, i) => weights.map((x, j) => x * (1 + i) + ((j % 7) - 3) * 0.05 * i)) };
}

/** What tfjs itself predicts for `rows` (8 features each) with these weights: the reference answer. */
export async function referencePredict(spec: ModelSpec, weights: Float32Array, rows: number[][]): Promise<number[][]> {
  const { setFlatWeights } = await import('@flotilla/model');
  const m = await tf.models.modelFromJSON({ modelTopology: spec.topology } as unknown as tf.io.ModelJSON);
  setFlatWeights(m, weights, spec.manifest);
  const out = tf.tidy(() => (m.predict(tf.tensor2d(rows)) as tf.Tensor).arraySync() as number[][]);
  m.dispose();
  return out;
}

export const rowsOf = (n: number, seed = 1): number[][] =>
  Array.from({ length: n }, (_, i) => Array.from({ length: 8 }, (_, j) => Math.round(Math.sin(seed * 13 + i * 7 + j * 3) * 1000) / 1000));

export function expectClose(a: number[], b: number[], tol = 1e-5): void {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) > tol) throw new Error(`index ${i}: ${a[i]} vs ${b[i]}`);
}

/**
 * An OIP binary-tensor request (the binary tensor data extension) with an FP32 input `a` [rows, 2]
 * and an INT64 input `ids` [rows, 1], every output asked for as bytes: the answer's status, its
 * outputs' names and byte sizes, and the output floats that follow the JSON header.
 */
export async function inferBinaryAIds(h: ServingHarness, url: string, a: number[], ids: number[]): Promise<{ status: number; sizes: Array<[string, number]>; floats: number[] }> {
  const rows = ids.length;
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        { name: 'a', shape: [rows, 2], datatype: 'FP32', parameters: { binary_data_size: rows * 8 } },
        { name: 'ids', shape: [rows, 1], datatype: 'INT64', parameters: { binary_data_size: rows * 8 } },
      ],
      parameters: { binary_data_output: true },
    }),
  );
  const body = Buffer.concat([header, Buffer.from(Float32Array.from(a).buffer), Buffer.from(BigInt64Array.from(ids.map(BigInt)).buffer)]);
  const res = await h.app.inject({ method: 'POST', url, payload: body, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } });
  if (res.statusCode !== 200) return { status: res.statusCode, sizes: [], floats: [] };
  const n = Number(res.headers['inference-header-content-length']);
  const head = JSON.parse(res.rawPayload.subarray(0, n).toString());
  const floats = new Float32Array(res.rawPayload.buffer.slice(res.rawPayload.byteOffset + n, res.rawPayload.byteOffset + res.rawPayload.length));
  return { status: 200, sizes: head.outputs.map((o: { name: string; parameters: { binary_data_size: number } }) => [o.name, o.parameters.binary_data_size]), floats: Array.from(floats) };
}
