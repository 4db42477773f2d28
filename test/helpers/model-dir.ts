import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { archiveDirectory } from '@flotilla/server';

/**
 * Writes what `model.save('file://dir')` (tfjs-node) writes: model.json plus weight shards of at
 * most `shardBytes` (the converter's default is 4 MiB), without needing tfjs-node. `edit` may
 * change model.json before it is written (bad-input tests).
 */
export async function saveModelDir(model: tf.LayersModel, dir: string, opts: { shardBytes?: number; edit?: (json: any) => void } = {}): Promise<{ weightBytes: number; shards: string[] }> {
  const shardBytes = opts.shardBytes ?? 4 * 1024 * 1024;
  let artifacts!: tf.io.ModelArtifacts;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const data = new Uint8Array(artifacts.weightData as ArrayBuffer);
  const count = Math.max(1, Math.ceil(data.byteLength / shardBytes));
  const shards = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`);
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) await writeFile(join(dir, shards[i]), data.subarray(i * shardBytes, Math.min(data.byteLength, (i + 1) * shardBytes)));
  const json = {
    format: 'layers-model',
    generatedBy: 'TensorFlow.js tfjs-layers v4',
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: shards, weights: artifacts.weightSpecs }],
  };
  opts.edit?.(json);
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  return { weightBytes: data.byteLength, shards };
}

/** The directory as the tar body POST /api/v1/models/{name}/versions takes, in memory (tests of small models). */
export async function tarBytes(dir: string): Promise<Buffer> {
  const a = await archiveDirectory(dir);
  const parts: Uint8Array[] = [];
  for await (const c of a.chunks()) parts.push(c);
  return Buffer.concat(parts);
}
