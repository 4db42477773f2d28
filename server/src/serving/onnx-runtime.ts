import { AppError } from '../errors.js';

/** The part of onnxruntime-node's API that serving uses. */
export interface OrtTensor {
  data: ArrayLike<number | bigint>;
  dims: readonly number[];
  type: string;
}
export interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtModule {
  InferenceSession: { create(bytes: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array | BigInt64Array | Int32Array, dims: readonly number[]) => OrtTensor;
}

const loaded = new Map<string, Promise<OrtModule>>();

/**
 * onnxruntime-node, an optional dependency, imported on first use (once per process).
 * FL_ERR_SERVING_ONNX_RUNTIME_MISSING (503) when it is not installed; tfjs serving never needs it.
 * `specifier` exists for tests (a package that is not there).
 */
export function loadOnnxRuntime(specifier = 'onnxruntime-node'): Promise<OrtModule> {
  let p = loaded.get(specifier);
  if (!p) {
    p = import(specifier).then(
      (m) => (m.default ?? m) as OrtModule,
      (err: Error) => {
        loaded.delete(specifier);
        throw new AppError('FL_ERR_SERVING_ONNX_RUNTIME_MISSING', { package: specifier, why: err.message.split('\n')[0] });
      },
    );
    loaded.set(specifier, p);
  }
  return p;
}

/**
 * Upload check: load the model in onnxruntime and run one batch of two zero rows, which must give
 * every output with two rows of its declared shape. Without onnxruntime installed nothing is
 * run (the structural checks of registry/onnx-import.ts stand alone). FL_ERR_MODEL_IMPORT_ONNX
 * when the model does not load or run.
 */
export async function trialRunOnnx(bytes: Uint8Array, sig: { inputs: Array<{ name: string; elemType: string; shape: number[] }>; outputs: Array<{ name: string; shape: number[] }> }): Promise<void> {
  let ort: OrtModule;
  try {
    ort = await loadOnnxRuntime();
  } catch {
    return;
  }
  let session: OrtSession | null = null;
  try {
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const feeds: Record<string, OrtTensor> = {};
    for (const t of sig.inputs) {
      const dims = [2, ...t.shape.slice(1)];
      const n = dims.reduce((a, b) => a * b, 1);
      feeds[t.name] = t.elemType === 'INT64' ? new ort.Tensor('int64', new BigInt64Array(n), dims) : t.elemType === 'INT32' ? new ort.Tensor('int32', new Int32Array(n), dims) : new ort.Tensor('float32', new Float32Array(n), dims);
    }
    const out = await session.run(feeds);
    for (const t of sig.outputs) {
      const want = [2, ...t.shape.slice(1)];
      const got = out[t.name]?.dims ?? [];
      if (got.length !== want.length || got.some((d, i) => d !== want[i])) throw new Error(`output ${t.name} has shape [${got.join(', ')}] for a batch of 2, not [${want.join(', ')}]`);
    }
  } catch (err) {
    throw new AppError('FL_ERR_MODEL_IMPORT_ONNX', { why: `onnxruntime could not run it: ${(err as Error).message.split('\n')[0]}` });
  } finally {
    await session?.release().catch(() => undefined);
  }
}
