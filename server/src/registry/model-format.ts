import type { ModelSpec } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { VersionRecord } from '../store/records.js';

/** The formats a version may be stored in: a tfjs LayersModel (spec + flat weights) or an ONNX file. */
export type ModelFormat = 'tfjs' | 'onnx';

/** The artifact holding an ONNX version's model file. */
export const ONNX_ARTIFACT = 'model.onnx';

export const formatOf = (v: VersionRecord): ModelFormat => (v.onnx ? 'onnx' : 'tfjs');

/** The tfjs spec of a version; FL_ERR_MODEL_FORMAT (409) for an ONNX version, which has none. */
export function tfjsSpec(v: VersionRecord, operation = 'this operation'): ModelSpec {
  if (!v.spec) throw new AppError('FL_ERR_MODEL_FORMAT', { model: v.model, version: v.version, format: formatOf(v), needs: 'tfjs', operation });
  return v.spec;
}
