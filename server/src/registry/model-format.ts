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

/**
 * What a teacher takes and gives, for distillation: one input (its shape, batch excluded) and
 * one output of `numClasses` values per row. A tfjs version's spec, or an ONNX version's
 * signature (one FLOAT input, one output). FL_ERR_MODEL_FORMAT (409) for versions with several
 * inputs or outputs, or an ONNX input of another type.
 */
export function teacherShape(v: VersionRecord): { inputShape: number[]; numClasses: number } {
  const refuse = (why: string) => new AppError('FL_ERR_MODEL_FORMAT', { model: v.model, version: v.version, format: formatOf(v), operation: 'distillation', why });
  if (v.onnx) {
    const { inputs, outputs } = v.onnx;
    if (inputs.length !== 1 || outputs.length !== 1) throw refuse('a teacher has one input and one output');
    if (inputs[0].elemType !== 'FLOAT') throw refuse('the teacher\'s input must be FLOAT');
    return { inputShape: inputs[0].shape.slice(1), numClasses: outputs[0].shape.slice(1).reduce((a, b) => a * b, 1) };
  }
  const spec = tfjsSpec(v, 'distillation');
  if (spec.signature && (spec.signature.inputs.length !== 1 || spec.signature.outputs.length !== 1)) throw refuse('a teacher has one input and one output');
  return { inputShape: spec.inputShape, numClasses: spec.numClasses };
}
