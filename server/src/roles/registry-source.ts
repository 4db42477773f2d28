import type { AliasRecord, DeploymentRecord, VersionRecord } from '../store/records.js';

/** A model's aliases as the upstream has them, with a validator for the next poll. */
export interface AliasSnapshot {
  aliases: AliasRecord[];
  /** Opaque validator: passing it back answers null while nothing moved. */
  etag: string;
}

/**
 * Where a serving replica or a sidecar reads the registry from: the coordinator over HTTP
 * (http-registry-source.ts) or the shared store, read-only (store-registry-source.ts). Both pass
 * test/deploy/registry-source.test.ts. Contracts:
 *  - nothing here writes upstream;
 *  - failures are AppErrors: FL_ERR_UPSTREAM_UNREACHABLE when the upstream cannot be reached,
 *    FL_ERR_AUTH_INVALID_TOKEN / FL_ERR_AUTH_FORBIDDEN for a refused credential, the registry's
 *    own codes (FL_ERR_MODEL_NOT_FOUND, FL_ERR_VERSION_NOT_FOUND...) for what does not exist;
 *  - `artifact` returns bytes as the upstream sent them: the caller verifies their sha256.
 */
export interface RegistrySource {
  /** Where it reads from, for logs and status (a URL without credentials, or the store kind). */
  readonly describe: string;
  listModels(): Promise<string[]>;
  /** null when `etag` is still current (nothing moved since). */
  aliases(model: string, etag?: string): Promise<AliasSnapshot | null>;
  version(model: string, version: number): Promise<VersionRecord>;
  artifact(record: VersionRecord, name: string): Promise<Uint8Array>;
  deployments(): Promise<DeploymentRecord[]>;
  close(): Promise<void>;
}
