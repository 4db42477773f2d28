import { createHash } from 'node:crypto';
import { AppError, ModelSpecSchema, layersModelJson, type LayersModelJson, type ModelSpec } from '@flotilla/protocol';
import { assertManifest, float32ToBytes, manifestLength } from '@flotilla/protocol';
import type { BlobStore } from '../store/blob-store.js';
import type { AliasHistoryRecord, AliasRecord, ArtifactRef, ModelRecord, VersionRecord } from '../store/records.js';
import type { CommitInput, Store, VersionQuery } from '../store/store.js';
import { teacherShape, tfjsSpec } from './model-format.js';
import { SYSTEM_ALIAS, ALIAS_NAME, assertUserAlias, rollbackTarget } from './alias-rules.js';
import {
  DEFAULT_VARIANT_OPTIONS,
  STUDENT_SPEC_ARTIFACT,
  STUDENT_VARIANT,
  VARIANTS,
  WEIGHTS_ARTIFACT,
  artifactOf,
  decodeVariant,
  encodeVariant,
  tfjsWeightBytes,
  type VariantName,
  type VariantOptions,
  type WeightsVariant,
} from './variants.js';

/**
 * Server-side test-set evaluation of a weights vector, e.g. `{ accuracy, loss }`. The registry
 * records what it returns for each variant as `<variant>_<key>` beside the float32 `<key>`.
 */
export type VariantEvaluator = (weights: Float32Array, spec: ModelSpec) => Promise<Record<string, number>>;

export interface RegistryOptions {
  /** Variants made at publish; default all of VARIANTS. */
  variants?: readonly VariantName[];
  sparsity?: number;
  int8BlockSize?: number;
  evaluator?: VariantEvaluator;
  /** Decoded variant weights kept for tfjs serving (entries). Default 8. */
  decodedCacheSize?: number;
  /**
   * Bytes of verified artifacts kept in memory (LRU), so that hot immutable artifacts are hashed
   * once when read from the blob store rather than on every request. Default 256 MiB; 0 disables.
   */
  cacheBytes?: number;
  /**
   * Called after a user alias of `model` moved or was deleted through this registry (set, delete,
   * rollback), once the store has it; must not throw. buildApp uses it so that serving in this
   * process forgets its cached resolutions at once instead of after its alias TTL.
   */
  onAliasChanged?: (model: string) => void;
}

export interface PublishInput {
  model: string;
  spec: ModelSpec;
  weights: Float32Array;
  taskId?: string;
  round?: number;
  parentVersion?: number;
  /** With parentVersion: the model it belongs to, when not this one. */
  parentModel?: string;
  /** Metrics of the float32 weights (accuracy, loss, participants...). */
  metrics?: Record<string, number>;
  tags?: string[];
  description?: string;
  createdAt?: number;
}

export interface PreparedArtifacts {
  artifacts: ArtifactRef[];
  /** Variant metrics (`<variant>_<key>`, `pruned_sparsity`), and the float32 evaluation when it was run here. */
  metrics: Record<string, number>;
}

export interface ServedWeights {
  bytes: Uint8Array;
  /** Strong validator of exactly these bytes. */
  etag: string;
}

const TAG = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/**
 * The model registry over a Store and a BlobStore. Contracts:
 *  - publishing writes every artifact blob (weights and variants, each durable) before the
 *    version record, and the record appears in one store transaction (putVersion or the round's
 *    commitRound), so a crash leaves no visible half-version, only unreferenced blobs;
 *  - versions are immutable: a version number that exists answers FL_ERR_VERSION_IMMUTABLE;
 *  - artifact reads verify checksums (the BlobStore's contract) and never return corrupt bytes;
 *  - `latest` moves by itself on every publish; other aliases move only through setAlias,
 *    deleteAlias and rollbackAlias, each recorded in the alias history.
 */
export class Registry {
  private readonly variants: readonly VariantName[];
  private readonly variantOptions: VariantOptions;
  private readonly evaluator?: VariantEvaluator;
  private readonly decoded = new Map<string, Uint8Array>();
  private readonly decodedCacheSize: number;
  private readonly verified = new Map<string, Uint8Array>();
  private verifiedBytes = 0;
  private readonly cacheBytes: number;
  private readonly onAliasChanged?: (model: string) => void;

  constructor(
    readonly store: Store,
    readonly blobs: BlobStore,
    options: RegistryOptions = {},
  ) {
    this.variants = options.variants ?? VARIANTS;
    this.onAliasChanged = options.onAliasChanged;
    this.variantOptions = {
      sparsity: options.sparsity ?? DEFAULT_VARIANT_OPTIONS.sparsity,
      int8BlockSize: options.int8BlockSize ?? DEFAULT_VARIANT_OPTIONS.int8BlockSize,
    };
    if (!(this.variantOptions.sparsity >= 0 && this.variantOptions.sparsity < 1)) throw new RangeError('sparsity must be in [0, 1)');
    this.evaluator = options.evaluator;
    this.decodedCacheSize = options.decodedCacheSize ?? 8;
    this.cacheBytes = options.cacheBytes ?? 256 * 1024 * 1024;
  }

  // ---- publishing ----

  /**
   * Write the weights and every configured variant as blobs and evaluate the variants. Nothing
   * becomes visible: the caller puts the returned artifacts and metrics into a version record
   * (the coordinator does so inside commitRound). `knownMetrics` are the float32 metrics the
   * caller has already (the float32 weights are evaluated here only when they lack `accuracy`).
   */
  async prepareArtifacts(weights: Float32Array, spec: ModelSpec, knownMetrics: Record<string, number> = {}): Promise<PreparedArtifacts> {
    assertManifest(spec.manifest);
    if (weights.length !== manifestLength(spec.manifest)) {
      throw new AppError('FL_ERR_TENSOR_BAD_MANIFEST', { expected: manifestLength(spec.manifest), got: weights.length });
    }
    for (let i = 0; i < weights.length; i++) {
      if (!Number.isFinite(weights[i])) throw new AppError('FL_ERR_REPORT_NON_FINITE', { index: i });
    }
    const main = await this.blobs.put(float32ToBytes(weights));
    const artifacts: ArtifactRef[] = [{ name: WEIGHTS_ARTIFACT, sha256: main.sha256, size: main.size }];
    const metrics: Record<string, number> = {};
    if (this.evaluator && knownMetrics.accuracy === undefined) Object.assign(metrics, await this.evaluator(weights, spec));
    for (const variant of this.variants) {
      const enc = encodeVariant(variant, weights, spec, this.variantOptions);
      const ref = await this.blobs.put(enc.bytes);
      artifacts.push({ name: artifactOf(variant), sha256: ref.sha256, size: ref.size });
      Object.assign(metrics, enc.facts);
      if (this.evaluator) {
        for (const [k, x] of Object.entries(await this.evaluator(enc.dense, spec))) metrics[`${variant}_${k}`] = x;
      }
    }
    return { artifacts, metrics };
  }

  /** A complete version record for `version`, its artifacts written (see prepareArtifacts). */
  async prepareVersion(input: PublishInput & { version: number }): Promise<VersionRecord> {
    for (const t of input.tags ?? []) if (!TAG.test(t)) throw new AppError('FL_ERR_HTTP_VALIDATION', { tag: t, rule: TAG.source });
    const prepared = await this.prepareArtifacts(input.weights, input.spec, input.metrics);
    const v: VersionRecord = {
      model: input.model,
      version: input.version,
      createdAt: input.createdAt ?? Date.now(),
      spec: input.spec,
      metrics: { ...prepared.metrics, ...input.metrics },
      artifacts: prepared.artifacts,
      tags: [...new Set(input.tags ?? [])],
      archived: false,
    };
    if (input.taskId !== undefined) v.taskId = input.taskId;
    if (input.round !== undefined) v.round = input.round;
    if (input.parentVersion !== undefined) v.parentVersion = input.parentVersion;
    if (input.parentModel !== undefined && input.parentModel !== input.model) v.parentModel = input.parentModel;
    if (input.description !== undefined) v.description = input.description;
    return v;
  }

  /** Publish a version outside any round: next number of the model (1 for a new model); `latest` moves to it. */
  async publish(input: PublishInput, by = 'system'): Promise<VersionRecord> {
    const newest = await this.store.listVersions(input.model, { limit: 1, includeArchived: true });
    const version = (newest[0]?.version ?? 0) + 1;
    const v = await this.prepareVersion({ parentVersion: newest[0]?.version, ...input, version });
    await this.store.putVersion(v, by);
    return v;
  }

  /** A round's commit with the version's artifacts prepared here (blobs first, then one store transaction). */
  async commitRound(input: Omit<CommitInput, 'version'> & { version: PublishInput & { version: number } }): Promise<VersionRecord> {
    const v = await this.prepareVersion(input.version);
    await this.store.commitRound({ ...input, version: v });
    return v;
  }

  // ---- reading ----

  async listModels(): Promise<Array<ModelRecord & { latestVersion: number | null }>> {
    const models = await this.store.listModels();
    return Promise.all(models.map(async (m) => ({ ...m, latestVersion: (await this.store.getAlias(m.name, SYSTEM_ALIAS))?.version ?? null })));
  }

  async getModel(name: string): Promise<ModelRecord> {
    const m = await this.store.getModel(name);
    if (!m) throw new AppError('FL_ERR_MODEL_NOT_FOUND', { model: name });
    return m;
  }

  /** Newest first; FL_ERR_MODEL_NOT_FOUND for an unknown model, FL_ERR_ALIAS_INVALID for a malformed alias filter. */
  async listVersions(model: string, query?: VersionQuery): Promise<VersionRecord[]> {
    await this.getModel(model);
    if (query?.alias !== undefined && !ALIAS_NAME.test(query.alias)) throw new AppError('FL_ERR_ALIAS_INVALID', { alias: query.alias });
    return this.store.listVersions(model, query);
  }

  async getVersion(model: string, version: number): Promise<VersionRecord> {
    const v = await this.store.getVersion(model, version);
    if (v) return v;
    await this.getModel(model);
    throw new AppError('FL_ERR_VERSION_NOT_FOUND', { model, version });
  }

  /**
   * A version by number ("3") or alias ("production", "latest"). `alias` is set when the
   * reference was an alias (HTTP answers those with a redirect to the immutable URL).
   */
  async resolve(model: string, ref: string | number): Promise<{ record: VersionRecord; alias?: string }> {
    if (typeof ref === 'number' || /^[0-9]{1,15}$/.test(ref)) return { record: await this.getVersion(model, Number(ref)) };
    if (!ALIAS_NAME.test(ref)) throw new AppError('FL_ERR_ALIAS_INVALID', { alias: ref, rule: ALIAS_NAME.source });
    const a = await this.store.getAlias(model, ref);
    if (!a) {
      await this.getModel(model);
      throw new AppError('FL_ERR_ALIAS_NOT_FOUND', { model, alias: ref });
    }
    return { record: await this.getVersion(model, a.version), alias: ref };
  }

  /**
   * Verified bytes of a named artifact of a version: from the blob store (which verifies the
   * sha256 on every get), or from the in-memory cache of bytes verified that way. Callers must
   * not modify the returned bytes.
   */
  async readArtifact(record: VersionRecord, name: string): Promise<{ ref: ArtifactRef; bytes: Uint8Array }> {
    const ref = record.artifacts.find((a) => a.name === name);
    if (!ref) {
      const isVariant = name.startsWith(`${WEIGHTS_ARTIFACT}.`);
      throw new AppError(isVariant ? 'FL_ERR_VARIANT_NOT_FOUND' : 'FL_ERR_ARTIFACT_NOT_FOUND', { model: record.model, version: record.version, artifact: name });
    }
    const cached = this.verified.get(ref.sha256);
    if (cached) {
      this.verified.delete(ref.sha256);
      this.verified.set(ref.sha256, cached);
      return { ref, bytes: cached };
    }
    // Single flight: when a round starts, every selected device asks for the same new weights at
    // once; one read (and one checksum) serves them all.
    let pending = this.reading.get(ref.sha256);
    if (!pending) {
      pending = this.blobs.get(ref.sha256).then((bytes) => {
        // A version names only blobs written before it, so a missing one is damage, not a 404.
        if (!bytes) throw new AppError('FL_ERR_BLOB_CORRUPT', { sha256: ref.sha256, why: 'missing' });
        this.remember(ref.sha256, bytes);
        return bytes;
      });
      const done = () => this.reading.delete(ref.sha256);
      pending.then(done, done);
      this.reading.set(ref.sha256, pending);
    }
    return { ref, bytes: await pending };
  }

  private readonly reading = new Map<string, Promise<Uint8Array>>();

  private remember(sha256: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.cacheBytes / 4) return;
    this.verified.set(sha256, bytes);
    this.verifiedBytes += bytes.byteLength;
    for (const [k, b] of this.verified) {
      if (this.verifiedBytes <= this.cacheBytes) break;
      this.verified.delete(k);
      this.verifiedBytes -= b.byteLength;
    }
  }

  /** Dense float32 weights of a version or one of its variants (the caller owns the array). */
  async readWeights(record: VersionRecord, variant: WeightsVariant = 'float32'): Promise<Float32Array> {
    const spec = await this.specOf(record, variant);
    const { bytes } = await this.readArtifact(record, artifactOf(variant));
    const dense = decodeVariant(variant, bytes, manifestLength(spec.manifest));
    // float32 decodes to a view of the (possibly cached) bytes: hand out a copy.
    return variant === 'float32' ? dense.slice() : dense;
  }

  /** The weights file tfjs reads for `variant` (see variants.ts), with its ETag. */
  async tfjsWeights(record: VersionRecord, variant: WeightsVariant = 'float32'): Promise<ServedWeights> {
    const spec = await this.specOf(record, variant);
    const { ref, bytes } = await this.readArtifact(record, artifactOf(variant));
    if (variant === 'float32' || variant === 'float16' || variant === STUDENT_VARIANT) return { bytes, etag: `"${ref.sha256}"` };
    const etag = `"${ref.sha256}.f32"`;
    let dense = this.decoded.get(etag);
    if (!dense) {
      dense = tfjsWeightBytes(variant, bytes, manifestLength(spec.manifest));
      if (this.decoded.size >= this.decodedCacheSize) this.decoded.delete(this.decoded.keys().next().value!);
      this.decoded.set(etag, dense);
    }
    return { bytes: dense, etag };
  }

  /** model.json for tf.loadLayersModel, naming `weightsPath` (relative to model.json) as its one weights file. */
  async modelJson(record: VersionRecord, weightsPath: string, variant: WeightsVariant = 'float32'): Promise<{ json: LayersModelJson; etag: string }> {
    if (variant !== 'float32' && !record.artifacts.some((a) => a.name === artifactOf(variant))) {
      throw new AppError('FL_ERR_VARIANT_NOT_FOUND', { model: record.model, version: record.version, variant });
    }
    const spec = await this.specOf(record, variant);
    const json = layersModelJson(spec, weightsPath, { model: record.model, version: record.version, variant });
    if (variant === 'float16') {
      for (const w of json.weightsManifest[0].weights) (w as typeof w & { quantization?: object }).quantization = { dtype: 'float16' };
    }
    const etag = `"${createHash('sha256').update(JSON.stringify(json)).digest('hex').slice(0, 32)}"`;
    return { json, etag };
  }

  /**
   * The tfjs spec a variant is built from: the version's own, or the distilled student's (read
   * from its artifact). FL_ERR_MODEL_FORMAT for ONNX versions; FL_ERR_VARIANT_NOT_FOUND for a
   * student the version does not have.
   */
  async specOf(record: VersionRecord, variant: WeightsVariant = 'float32'): Promise<ModelSpec> {
    if (variant !== STUDENT_VARIANT) return tfjsSpec(record, 'tfjs weights');
    const { bytes } = await this.readArtifact(record, STUDENT_SPEC_ARTIFACT).catch((err) => {
      throw err instanceof AppError && err.code === 'FL_ERR_ARTIFACT_NOT_FOUND' ? new AppError('FL_ERR_VARIANT_NOT_FOUND', { model: record.model, version: record.version, variant }) : err;
    });
    return ModelSpecSchema.parse(JSON.parse(Buffer.from(bytes).toString('utf8')));
  }

  /**
   * Add a student distilled from a version (tfjs, or ONNX with one input and one output) as its
   * 'distilled' variant, a tfjs model: the student takes the teacher's input shape and gives its
   * number of classes (teacherShape); its spec and float32 weights are
   * written as blobs first, then added to the version in one store update (a version has at
   * most one student: a second answers FL_ERR_VERSION_IMMUTABLE), and `metrics` (prefixed
   * `distilled_`) merged into the version's metrics.
   */
  async addStudent(model: string, version: number, spec: ModelSpec, weightsRef: { sha256: string; size: number }, metrics: Record<string, number>): Promise<VersionRecord> {
    const record = await this.getVersion(model, version);
    const teacher = teacherShape(record);
    const bad = (why: string, extra: Record<string, unknown> = {}) => new AppError('FL_ERR_MODEL_IMPORT_TOPOLOGY', { why, ...extra });
    if (JSON.stringify(spec.inputShape) !== JSON.stringify(teacher.inputShape)) throw bad('the student must take the teacher\'s input shape', { teacher: teacher.inputShape, student: spec.inputShape });
    if (spec.numClasses !== teacher.numClasses) throw bad('the student must give the teacher\'s number of classes', { teacher: teacher.numClasses, student: spec.numClasses });
    if (weightsRef.size !== 4 * manifestLength(spec.manifest)) throw new AppError('FL_ERR_MODEL_IMPORT_WEIGHTS', { expectedBytes: 4 * manifestLength(spec.manifest), gotBytes: weightsRef.size });
    if (record.artifacts.some((a) => a.name === artifactOf(STUDENT_VARIANT))) throw new AppError('FL_ERR_VERSION_IMMUTABLE', { model, version, variant: STUDENT_VARIANT, why: 'the version has a distilled student already' });
    const specRef = await this.blobs.put(Buffer.from(JSON.stringify(spec), 'utf8'));
    await this.store.addVersionArtifacts(model, version, [
      { name: artifactOf(STUDENT_VARIANT), sha256: weightsRef.sha256, size: weightsRef.size },
      { name: STUDENT_SPEC_ARTIFACT, sha256: specRef.sha256, size: specRef.size },
    ]);
    const prefixed = Object.fromEntries(Object.entries(metrics).filter(([, x]) => Number.isFinite(x)).map(([k, x]) => [`${STUDENT_VARIANT}_${k}`, x]));
    await this.store.addVersionMetrics(model, version, prefixed);
    return this.getVersion(model, version);
  }

  // ---- aliases and archiving ----

  async listAliases(model: string): Promise<AliasRecord[]> {
    await this.getModel(model);
    return this.store.listAliases(model);
  }

  /** Point a user alias at a version (number or another alias). */
  async setAlias(model: string, alias: string, ref: string | number, by: string): Promise<AliasRecord> {
    assertUserAlias(alias);
    const { record } = await this.resolve(model, ref);
    const moved = await this.store.setAlias(model, alias, record.version, by);
    this.onAliasChanged?.(model);
    return moved;
  }

  async deleteAlias(model: string, alias: string, by: string): Promise<void> {
    assertUserAlias(alias);
    await this.getModel(model);
    await this.store.deleteAlias(model, alias, by);
    this.onAliasChanged?.(model);
  }

  /** One call: move the alias back to the version before its newest change not yet undone (see rollbackTarget). */
  async rollbackAlias(model: string, alias: string, by: string): Promise<AliasRecord> {
    assertUserAlias(alias);
    await this.getModel(model);
    const history = await this.store.aliasHistory(model, alias);
    const target = rollbackTarget(history);
    if (target === null) throw new AppError('FL_ERR_ALIAS_NO_PREVIOUS', { model, alias });
    const moved = await this.store.setAlias(model, alias, target, by, 'rollback');
    this.onAliasChanged?.(model);
    return moved;
  }

  async aliasHistory(model: string, alias?: string): Promise<AliasHistoryRecord[]> {
    if (alias !== undefined && !ALIAS_NAME.test(alias)) throw new AppError('FL_ERR_ALIAS_INVALID', { alias });
    await this.getModel(model);
    return this.store.aliasHistory(model, alias);
  }

  /** Hide a version from listings (or show it again); its data and artifacts stay. */
  async archive(model: string, version: number, archived = true): Promise<VersionRecord> {
    await this.getVersion(model, version);
    await this.store.setArchived(model, version, archived);
    return this.getVersion(model, version);
  }
}
