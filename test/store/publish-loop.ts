/**
 * Child process for the crash test: publishes versions of one model as fast as it can on the
 * SQLite store + file blobs in argv[2], printing each committed version number, until killed.
 * Every version has new weights (seeded by its number), so every publish writes new blobs.
 */
import { buildManifest } from '@flotilla/protocol';
import type { ModelSpec } from '@flotilla/protocol';
import { Registry } from '../../server/src/registry/registry.js';
import { FileBlobStore } from '../../server/src/store/file-blob-store.js';
import { SqliteStore } from '../../server/src/store/sqlite-store.js';

const dataDir = process.argv[2];
const spec: ModelSpec = {
  topology: {},
  manifest: buildManifest([
    { name: 'k', shape: [64, 64] },
    { name: 'b', shape: [64] },
  ]),
  inputShape: [64],
  numClasses: 64,
};
const store = new SqliteStore({ dataDir });
await store.init();
const registry = new Registry(store, new FileBlobStore(dataDir));
for (;;) {
  const next = ((await store.getAlias('crash', 'latest'))?.version ?? 0) + 1;
  const weights = new Float32Array(64 * 64 + 64).map((_, i) => Math.sin(next * 1000 + i));
  const v = await registry.publish({ model: 'crash', spec, weights });
  process.stdout.write(`${v.version}\n`);
}
