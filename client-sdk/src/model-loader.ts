import * as tf from '@tensorflow/tfjs';
import { ClientError } from './client.js';
import type { LayersModelJson, WireError } from '@flotilla/protocol';

/** Weights variants the registry publishes ('float32' is the version's own weights). */
export type ModelVariant = 'float32' | 'float16' | 'int8' | 'pruned';

/** One cached HTTP response: the bytes, their strong ETag and the URL they came from (after redirects). */
export interface CachedResponse {
  etag: string;
  url: string;
  body: Uint8Array;
}

/**
 * Where loadModel keeps downloaded model files, keyed by request URL. Node apps may back it with
 * files, browser apps with Cache Storage or IndexedDB; the default is in memory, per process.
 */
export interface ModelCacheStore {
  get(key: string): CachedResponse | undefined | Promise<CachedResponse | undefined>;
  set(key: string, value: CachedResponse): void | Promise<void>;
}

export class MemoryModelCache implements ModelCacheStore {
  private readonly entries = new Map<string, CachedResponse>();
  get(key: string): CachedResponse | undefined {
    return this.entries.get(key);
  }
  set(key: string, value: CachedResponse): void {
    this.entries.set(key, value);
  }
  get size(): number {
    return this.entries.size;
  }
}

const defaultCache = new MemoryModelCache();

export interface LoadModelOptions {
  /** The Flotilla server, e.g. `https://flotilla.example.com`. */
  serverUrl: string;
  /** Bearer token (a device or viewer token). */
  token?: string;
  /** A registry alias (default 'latest'); give this or `version`. */
  alias?: string;
  version?: number;
  /** Default 'float32'. 'int8' and 'pruned' are decoded by the server into float32 tfjs weights; 'float16' travels as half floats. */
  variant?: ModelVariant;
  /** Default: one in-memory cache per process. */
  cache?: ModelCacheStore;
  fetch?: typeof fetch;
}

export interface LoadedRegistryModel {
  model: tf.LayersModel;
  name: string;
  version: number;
  variant: ModelVariant;
  /** Strong ETag of the weights file. */
  etag: string;
  /** Which files came from the cache (model.json after a 304, weights without any request). */
  fromCache: { modelJson: boolean; weights: boolean };
  /** Bytes of weights downloaded by this call (0 when cached). */
  downloadedBytes: number;
}

async function failure(res: Response): Promise<ClientError> {
  let wire: WireError = { code: 'FL_ERR_INTERNAL', message: `HTTP ${res.status}` } as WireError;
  try {
    const body = (await res.json()) as { error?: WireError };
    if (body?.error?.code) wire = body.error;
  } catch {
    // not JSON: keep the status
  }
  return new ClientError(wire);
}

/**
 * Download a registry model for on-device inference: `model.json` of the version (or alias) and
 * its weights in the chosen variant, then build a tfjs LayersModel. Contracts:
 *  - model.json is revalidated with If-None-Match on every call (an alias may move), so an
 *    unchanged model costs one 304; weights URLs are immutable (they name a version), so cached
 *    weights are reused without any request;
 *  - errors from the server surface as ClientError with the registry's code (e.g.
 *    FL_ERR_MODEL_NOT_FOUND, FL_ERR_ALIAS_NOT_FOUND, FL_ERR_VARIANT_NOT_FOUND).
 * Call resolveBackend() first to run the model on the fastest tfjs backend.
 */
export async function loadModel(name: string, opts: LoadModelOptions): Promise<LoadedRegistryModel> {
  if (opts.alias !== undefined && opts.version !== undefined) throw new TypeError('give either alias or version, not both');
  const doFetch = opts.fetch ?? fetch;
  const cache = opts.cache ?? defaultCache;
  const variant = opts.variant ?? 'float32';
  const ref = opts.version !== undefined ? String(opts.version) : (opts.alias ?? 'latest');
  const base = opts.serverUrl.replace(/\/+$/, '');
  const query = variant === 'float32' ? '' : `?variant=${encodeURIComponent(variant)}`;
  const jsonUrl = `${base}/api/v1/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(ref)}/model.json${query}`;
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};

  const cachedJson = await cache.get(jsonUrl);
  const res = await doFetch(jsonUrl, { headers: { ...auth, ...(cachedJson ? { 'if-none-match': cachedJson.etag } : {}) } });
  let json: CachedResponse;
  if (res.status === 304 && cachedJson) json = cachedJson;
  else if (res.ok) {
    json = { etag: res.headers.get('etag') ?? '', url: res.url || jsonUrl, body: new Uint8Array(await res.arrayBuffer()) };
    if (json.etag) await cache.set(jsonUrl, json);
  } else throw await failure(res);
  const modelJson = JSON.parse(new TextDecoder().decode(json.body)) as LayersModelJson;

  // Weights paths are relative to model.json; tfjs appends model.json's query (the variant) to them.
  const group = modelJson.weightsManifest[0];
  const weightsUrl = new URL(group.paths[0], json.url);
  weightsUrl.search = new URL(json.url).search;
  let weights = await cache.get(weightsUrl.href);
  let downloadedBytes = 0;
  const weightsCached = !!weights;
  if (!weights) {
    const wr = await doFetch(weightsUrl.href, { headers: auth });
    if (!wr.ok) throw await failure(wr);
    weights = { etag: wr.headers.get('etag') ?? '', url: wr.url || weightsUrl.href, body: new Uint8Array(await wr.arrayBuffer()) };
    downloadedBytes = weights.body.byteLength;
    if (weights.etag) await cache.set(weightsUrl.href, weights);
  }

  const body = weights.body;
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: group.weights as tf.io.WeightsManifestEntry[],
      weightData: body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer,
    }),
  );
  const meta = modelJson.userDefinedMetadata as { version?: number } | undefined;
  return {
    model,
    name,
    version: meta?.version ?? Number(/\/versions\/([0-9]+)\//.exec(json.url)?.[1] ?? NaN),
    variant,
    etag: weights.etag,
    fromCache: { modelJson: res.status === 304, weights: weightsCached },
    downloadedBytes,
  };
}
