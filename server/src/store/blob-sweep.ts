import type { Store } from './store.js';

/**
 * Every blob hash a version record references (all models, archived versions included): what a
 * sweep of unreferenced blobs must keep. Blobs are referenced only by VersionRecord.artifacts.
 */
export async function referencedBlobs(store: Store): Promise<Set<string>> {
  const refs = new Set<string>();
  for (const m of await store.listModels()) {
    for (const v of await store.listVersions(m.name, { includeArchived: true })) for (const a of v.artifacts) refs.add(a.sha256);
  }
  return refs;
}
