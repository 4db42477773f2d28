import { OnnxFormatError, readOnnx, type OnnxInfo } from '@flotilla/model';
import { AppError } from '../errors.js';
import type { OnnxSignature, VersionRecord } from '../store/records.js';
import { ONNX_ARTIFACT } from './model-format.js';
import type { Registry } from './registry.js';

/** Default-domain operator sets onnxruntime 1.30 runs (older opsets are upgraded by it). */
export const ONNX_OPSETS = { min: 7, max: 23 } as const;
export const ONNX_IR_VERSIONS = { min: 3, max: 11 } as const;
const SERVED_TYPES = new Set(['FLOAT', 'INT64', 'INT32']);
const MAX_TENSORS = 16;

const refuse = (why: string, details: Record<string, unknown> = {}) => new AppError('FL_ERR_MODEL_IMPORT_ONNX', { why, ...details });

/**
 * What serving needs of an ONNX model, checked: a readable ModelProto with a graph, an IR version
 * and default-domain opset onnxruntime runs, no external data, 1-16 inputs and outputs, each a
 * FLOAT, INT64 or INT32 tensor whose first dimension is the (symbolic) batch dimension and whose
 * other dimensions are fixed. Throws FL_ERR_MODEL_IMPORT_ONNX naming the first problem.
 */
export function onnxSignature(bytes: Uint8Array): OnnxSignature {
  let info: OnnxInfo;
  try {
    info = readOnnx(bytes);
  } catch (err) {
    if (err instanceof OnnxFormatError) throw refuse(err.message);
    throw err;
  }
  if (info.irVersion < ONNX_IR_VERSIONS.min || info.irVersion > ONNX_IR_VERSIONS.max) throw refuse('unsupported IR version', { irVersion: info.irVersion, supported: ONNX_IR_VERSIONS });
  const opset = info.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version;
  if (opset === undefined) throw refuse('the model imports no default-domain opset');
  if (opset < ONNX_OPSETS.min || opset > ONNX_OPSETS.max) throw refuse('unsupported opset', { opset, supported: ONNX_OPSETS });
  if (info.externalData) throw refuse('initializers stored as external data cannot be uploaded: save the model with its weights inside');
  for (const [kind, list] of [['input', info.inputs], ['output', info.outputs]] as const) {
    if (list.length < 1 || list.length > MAX_TENSORS) throw refuse(`the model must have 1 to ${MAX_TENSORS} ${kind}s`, { got: list.length });
    if (new Set(list.map((t) => t.name)).size !== list.length || list.some((t) => !t.name)) throw refuse(`${kind} names must be distinct and not empty`);
    for (const t of list) {
      if (!SERVED_TYPES.has(t.elemType)) throw refuse(`${kind} type not served (FLOAT, INT64 or INT32 tensors)`, { [kind]: t.name, elemType: t.elemType });
      if (t.shape.length < 1 || t.shape.length > 8) throw refuse(`${kind} must have rank 1 to 8, the first dimension being the batch`, { [kind]: t.name, shape: t.shape });
      if (t.shape[0] !== -1) throw refuse(`${kind} needs a dynamic first (batch) dimension to be batched`, { [kind]: t.name, shape: t.shape });
      if (t.shape.slice(1).some((d) => d < 1)) throw refuse(`${kind} dimensions after the batch must be fixed`, { [kind]: t.name, shape: t.shape });
    }
  }
  return { irVersion: info.irVersion, opset, producer: info.producer, inputs: info.inputs, outputs: info.outputs, opTypes: info.opTypes };
}

export interface OnnxImportOptions {
  model: string;
  bytes: Uint8Array;
  /** Loads the model in onnxruntime (when installed) and throws if it cannot; see serving/onnx-runtime.ts. */
  check?: (bytes: Uint8Array, signature: OnnxSignature) => Promise<void>;
  description?: string;
  tags?: string[];
  by?: string;
}

/**
 * Publish an uploaded ONNX model as a new version of `model`: checked (onnxSignature, then a
 * trial load when `check` is given), stored as the artifact `model.onnx`, with its signature in
 * the record. Nothing becomes visible on error. The version moves `latest` like any publish.
 */
export async function importOnnx(registry: Registry, o: OnnxImportOptions): Promise<VersionRecord> {
  const signature = onnxSignature(o.bytes);
  await o.check?.(o.bytes, signature);
  const ref = await registry.blobs.put(o.bytes);
  const newest = await registry.store.listVersions(o.model, { limit: 1, includeArchived: true });
  const v: VersionRecord = {
    model: o.model,
    version: (newest[0]?.version ?? 0) + 1,
    createdAt: Date.now(),
    onnx: signature,
    metrics: {},
    artifacts: [{ name: ONNX_ARTIFACT, sha256: ref.sha256, size: ref.size }],
    tags: [...new Set(['imported', 'onnx', ...(o.tags ?? [])])],
    archived: false,
  };
  if (o.description !== undefined) v.description = o.description;
  await registry.store.putVersion(v, o.by ?? 'admin');
  return v;
}
