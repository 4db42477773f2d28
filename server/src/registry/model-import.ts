import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { inspectLayersModel, type ImportPurpose } from '@flotilla/model';
import type { ModelSpec } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { VersionRecord } from '../store/records.js';
import type { Registry } from './registry.js';
import { extractTar, type ExtractedFile } from './tar-extract.js';
import { WEIGHTS_ARTIFACT } from './variants.js';

export interface ImportOptions {
  /** Registered model that gets the new version. */
  model: string;
  /** The upload: a tar archive of the directory model.save('file://...') or the converter wrote. */
  body: AsyncIterable<Uint8Array>;
  limitBytes: number;
  /** A plan's trainableLayers, applied to the spec (see model/src/model-import.ts). */
  trainableLayers?: readonly string[];
  description?: string;
  tags?: string[];
  by?: string;
}

const MODEL_JSON_MAX = 32 * 1024 * 1024;

/** The shards of every group in order (Flotilla's flat weights, see inspectLayersModel), checking that every float is finite. */
async function* flatWeights(shards: ExtractedFile[][]): AsyncIterable<Uint8Array> {
  let carry: Buffer = Buffer.alloc(0);
  let index = 0;
  for (const f of shards.flat()) {
    for await (const chunk of createReadStream(f.path, { highWaterMark: 1 << 20 })) {
      const b = carry.length ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      const whole = b.length - (b.length % 4);
      const floats = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + whole));
      for (let k = 0; k < floats.length; k++) {
        if (!Number.isFinite(floats[k])) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { index: index + k, why: 'a value is NaN or infinite' });
      }
      index += floats.length;
      carry = Buffer.from(b.subarray(whole));
      yield b.subarray(0, whole);
    }
  }
}

/**
 * Import an uploaded LayersModel as a new version of `model` (model/src/model-import.ts lists the
 * checks; several inputs and outputs are allowed here, the version being servable: a task refuses
 * them when it starts from such a version). The archive streams to a temp dir, the weights stream from there into the blob store
 * in Flotilla's flat layout: memory stays O(model.json + chunk) whatever the model's size. On any
 * error nothing becomes visible (no version; at most an unreferenced blob, as after a crash).
 * Imported versions carry the float32 weights only; variants come with versions rounds publish.
 */
export async function importModel(registry: Registry, o: ImportOptions): Promise<VersionRecord> {
  return stageLayersModel(registry, { ...o, purpose: 'serve' }, async (spec, ref) => {
    const newest = await registry.store.listVersions(o.model, { limit: 1, includeArchived: true });
    const v: VersionRecord = {
      model: o.model,
      version: (newest[0]?.version ?? 0) + 1,
      createdAt: Date.now(),
      spec,
      metrics: {},
      artifacts: [{ name: WEIGHTS_ARTIFACT, sha256: ref.sha256, size: ref.size }],
      tags: [...new Set(['imported', ...(o.tags ?? [])])],
      archived: false,
    };
    if (o.description !== undefined) v.description = o.description;
    await registry.store.putVersion(v, o.by ?? 'admin');
    return v;
  });
}

/**
 * Check an uploaded LayersModel archive and write its flat weights as one blob, then hand the
 * spec and the blob to `commit` (which makes them visible: a new version, or a student variant).
 */
export async function stageLayersModel<T>(
  registry: Registry,
  o: Pick<ImportOptions, 'body' | 'limitBytes' | 'trainableLayers'> & { purpose?: ImportPurpose },
  commit: (spec: ModelSpec, ref: { sha256: string; size: number }) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-import-'));
  try {
    const files = await extractTar(o.body, dir, { limitBytes: o.limitBytes });
    const jsonKey = [...files.keys()].filter((k) => posix.basename(k) === 'model.json').sort((a, b) => a.length - b.length)[0];
    if (!jsonKey) throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: 'the archive has no model.json' });
    const jf = files.get(jsonKey)!;
    if (jf.size > MODEL_JSON_MAX) throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: `model.json over ${MODEL_JSON_MAX} bytes` });
    let json: unknown;
    try {
      json = JSON.parse(await readFile(jf.path, 'utf8'));
    } catch {
      throw new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why: 'model.json is not JSON' });
    }
    const inspected = await inspectLayersModel(json, o.trainableLayers, o.purpose);
    const base = posix.dirname(jsonKey);
    const shards = inspected.groups.map((g) => {
      const list = g.paths.map((p) => {
        const f = files.get(posix.normalize(posix.join(base, p)));
        if (!f) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { shard: p, why: 'the manifest names a weights file the upload lacks' });
        return f;
      });
      const got = list.reduce((a, f) => a + f.size, 0);
      if (got !== g.bytes) {
        throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { shards: g.paths, why: got < g.bytes ? 'weights files are truncated' : 'weights files are longer than the manifest', expectedBytes: g.bytes, gotBytes: got });
      }
      return list;
    });
    const ref = await registry.blobs.putStream(flatWeights(shards));
    return await commit(inspected.spec, ref);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
