import * as z from 'zod';

/** One entry of a flat weight manifest (see tensor/manifest.ts for the layout contract). */
export const WeightSpecSchema = z
  .object({
    name: z.string().min(1).max(256),
    shape: z.array(z.number().int().min(0)).max(8),
    dtype: z.literal('float32'),
    offset: z.number().int().min(0),
    size: z.number().int().min(0),
    /** False for a frozen weight: it never changes and never travels (absent means true). See tensor/trainable.ts. */
    trainable: z.boolean().optional(),
  })
  .strict();

/** One input or output of a tfjs model: shape with -1 for the batch dimension (and any other dynamic one). */
export const TensorSignatureSchema = z
  .object({
    name: z.string().min(1).max(256),
    dtype: z.enum(['float32', 'int32']),
    shape: z.array(z.number().int().min(-1)).min(1).max(9),
  })
  .strict();
export type TensorSignature = z.infer<typeof TensorSignatureSchema>;

/**
 * A model spec: a tfjs LayersModel topology (the `modelTopology` of model.json) plus the manifest
 * of its flat weights. Initial weights travel separately as bytes.
 */
export const ModelSpecSchema = z
  .object({
    topology: z.record(z.string(), z.unknown()),
    manifest: z.array(WeightSpecSchema).min(1).max(10000),
    /** What the model consumes and produces, for serving and data checks. */
    inputShape: z.array(z.number().int().min(1)).min(1).max(8),
    numClasses: z.number().int().min(1).max(100000),
    /**
     * Every input and output, in the model's order, as read from the model at import (absent on
     * specs made otherwise, e.g. presets: one input and one output, described by inputShape and
     * numClasses). Models with several inputs or outputs always carry it; they are served, not trained.
     */
    signature: z.object({ inputs: z.array(TensorSignatureSchema).min(1).max(16), outputs: z.array(TensorSignatureSchema).min(1).max(16) }).strict().optional(),
  })
  .strict();
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

/** The tfjs model.json served for a version, loadable by tf.loadLayersModel(url). */
export interface LayersModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: Record<string, unknown>;
  weightsManifest: Array<{ paths: string[]; weights: Array<{ name: string; shape: number[]; dtype: 'float32' }> }>;
  userDefinedMetadata?: Record<string, unknown>;
}

export function layersModelJson(spec: ModelSpec, weightsPath: string, metadata?: Record<string, unknown>): LayersModelJson {
  const json: LayersModelJson = {
    format: 'layers-model',
    generatedBy: 'flotilla',
    convertedBy: null,
    modelTopology: spec.topology,
    weightsManifest: [{ paths: [weightsPath], weights: spec.manifest.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype })) }],
  };
  if (metadata) json.userDefinedMetadata = metadata;
  return json;
}

/**
 * A model.json as `model.save('file://...')` or the TensorFlow.js converter writes it, as far as
 * an import reads it (model/src/model-import.ts checks the rest with tfjs).
 */
export const ImportModelJsonSchema = z
  .object({
    format: z.string().optional(),
    modelTopology: z.record(z.string(), z.unknown()),
    weightsManifest: z
      .array(
        z
          .object({
            paths: z.array(z.string().min(1).max(256)).min(1).max(10000),
            weights: z
              .array(
                z
                  .object({
                    name: z.string().min(1).max(256),
                    shape: z.array(z.number().int().min(0)).max(8),
                    dtype: z.string(),
                    quantization: z.unknown().optional(),
                    group: z.string().optional(),
                  })
                  .passthrough(),
              )
              .max(100000),
          })
          .passthrough(),
      )
      .max(10000),
  })
  .passthrough();
export type ImportModelJson = z.infer<typeof ImportModelJsonSchema>;
