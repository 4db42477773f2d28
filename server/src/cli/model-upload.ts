import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError, TaskPlanSchema, type TaskPlan } from '@flotilla/protocol';
import { inspectLayersModel, type ImportPurpose } from '@flotilla/model';
import { checkLoss, checkPlan } from '../coordinator/coordinator.js';
import { archiveDirectory } from '../registry/model-archive.js';
import { onnxSignature } from '../registry/onnx-import.js';
import { ApiClient, asApiError } from './api-client.js';

/**
 * The checks the server runs on a model directory and a plan, run here first so that a bad
 * model or plan is refused before any byte is uploaded (and nothing is stored): the plan parses
 * and fits the server's strategies, model.json builds with tfjs and matches its shards, the loss
 * fits the model's outputs. `purpose` 'serve' (models import) admits several inputs and outputs.
 * Throws ApiError with the server's codes.
 */
export async function checkModelDir(dir: string, planInput: unknown, purpose: ImportPurpose = 'train'): Promise<TaskPlan | undefined> {
  try {
    let plan: TaskPlan | undefined;
    if (planInput !== undefined) {
      const p = TaskPlanSchema.safeParse(planInput);
      if (!p.success) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { issues: p.error.issues.slice(0, 10) });
      plan = p.data;
      checkPlan(plan);
    }
    let json: unknown;
    try {
      json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    } catch (err) {
      throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: `cannot read ${join(dir, 'model.json')}: ${(err as Error).message}` });
    }
    const inspected = await inspectLayersModel(json, plan?.trainableLayers, purpose);
    for (const g of inspected.groups) {
      let got = 0;
      for (const p of g.paths) {
        const s = await stat(join(dir, p)).catch(() => null);
        if (!s?.isFile()) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { shard: p, why: 'the manifest names a weights file the directory lacks' });
        got += s.size;
      }
      if (got !== g.bytes) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { shards: g.paths, why: got < g.bytes ? 'weights files are truncated' : 'weights files are longer than the manifest', expectedBytes: g.bytes, gotBytes: got });
    }
    if (plan) checkLoss(plan, inspected.spec);
    return plan;
  } catch (err) {
    throw asApiError(err);
  }
}

/** Stream a model directory as a tar to POST /api/v1/models/{model}/versions; resolves with the new version. */
export async function uploadModelDir(api: ApiClient, model: string, dir: string): Promise<{ model: string; version: number; artifacts: Array<{ size: number }> }> {
  const archive = await archiveDirectory(dir);
  return api.call('POST', `/api/v1/models/${encodeURIComponent(model)}/versions`, undefined, { contentType: 'application/x-tar', length: archive.size, chunks: archive.chunks() });
}

/**
 * Check an ONNX model file as the server will (registry/onnx-import.ts: format, opset, batch
 * dimension, types) and upload it to POST /api/v1/models/{model}/versions as application/onnx.
 */
export async function uploadOnnxFile(api: ApiClient, model: string, file: string): Promise<{ model: string; version: number; onnx: { opset: number; inputs: Array<{ name: string }>; outputs: Array<{ name: string }> } }> {
  const bytes = await readFile(file);
  try {
    onnxSignature(bytes);
  } catch (err) {
    throw asApiError(err);
  }
  async function* chunks() {
    yield bytes;
  }
  return api.call('POST', `/api/v1/models/${encodeURIComponent(model)}/versions`, undefined, { contentType: 'application/onnx', length: bytes.length, chunks: chunks() });
}
