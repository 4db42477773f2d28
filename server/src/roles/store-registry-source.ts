import { createHash } from 'node:crypto';
import { Registry } from '../registry/registry.js';
import type { BlobStore } from '../store/blob-store.js';
import type { DeploymentRecord, VersionRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { AliasSnapshot, RegistrySource } from './registry-source.js';

/**
 * The registry read straight from the store the coordinators share (MongoDB + GridFS, or a SQLite
 * data dir opened read-only: read-only-storage.ts). Only read methods are called, so a replica
 * using it never writes the store. See registry-source.ts for the contract.
 */
export class StoreRegistrySource implements RegistrySource {
  readonly describe: string;
  private readonly registry: Registry;

  constructor(
    readonly store: Store,
    blobs: BlobStore,
    private readonly closeStorage: () => Promise<void> = async () => undefined,
  ) {
    this.describe = `${store.kind} store (read-only)`;
    // No variants are made here (nothing is published); the artifact cache is left to the mirror.
    this.registry = new Registry(store, blobs, { variants: [], cacheBytes: 0 });
  }

  async listModels(): Promise<string[]> {
    return (await this.registry.listModels()).map((m) => m.name);
  }

  async aliases(model: string, etag?: string): Promise<AliasSnapshot | null> {
    const aliases = await this.registry.listAliases(model);
    const tag = createHash('sha256').update(JSON.stringify(aliases)).digest('base64url');
    return tag === etag ? null : { aliases, etag: tag };
  }

  version(model: string, version: number): Promise<VersionRecord> {
    return this.registry.getVersion(model, version);
  }

  async artifact(record: VersionRecord, name: string): Promise<Uint8Array> {
    return (await this.registry.readArtifact(record, name)).bytes;
  }

  deployments(): Promise<DeploymentRecord[]> {
    return this.store.listDeployments();
  }

  close(): Promise<void> {
    return this.closeStorage();
  }
}
