import { MongoClient } from 'mongodb';
import type { BlobStore } from './blob-store.js';
import { FileBlobStore } from './file-blob-store.js';
import { GridFsBlobStore } from './gridfs-blob-store.js';
import { MemoryBlobStore } from './memory-blob-store.js';
import { MemoryStore } from './memory-store.js';
import { MongoStore, dbNameOf } from './mongo-store.js';
import { SqliteStore } from './sqlite-store.js';
import { referencedBlobs } from './blob-sweep.js';
import { guardStorage, type StorageHealth } from './storage-health.js';
import type { Store } from './store.js';

export interface StorageOptions {
  /** MongoDB mode (`--mongodb-url` / FLOTILLA_MONGODB_URL): records in MongoDB, blobs in GridFS. Wins over dataDir. */
  mongodbUrl?: string;
  /** Database name in MongoDB mode; defaults to the URL's, else 'flotilla'. */
  mongodbDb?: string;
  /** Embedded mode: `<dataDir>/flotilla.db` and `<dataDir>/blobs`. */
  dataDir?: string;
  /**
   * Other processes write the same data dir (cluster nodes on one host): no start-up sweep, since
   * a blob another node wrote for a commit it has not recorded yet would look unreferenced.
   */
  sharedDataDir?: boolean;
}

export interface Storage {
  store: Store;
  blobs: BlobStore;
  /** Whether writes can succeed (full disk), for /readyz; store and blobs report to it. */
  health: StorageHealth;
  /** Embedded mode: unreferenced blobs removed at start-up (a failed commit's leftovers). */
  swept?: { removed: number; bytes: number };
  /** Closes both (and the shared MongoClient). Call once, from the app's onClose. */
  close(): Promise<void>;
}

/**
 * The one place that picks the persistence pair: MongoDB + GridFS when a URL is given, SQLite +
 * files when a data dir is given, memory otherwise (tests, throwaway runs). The store is
 * initialised (schema migrated, indexes created) before this resolves. Store and blobs come back
 * guarded by one StorageHealth (storage-health.ts). In embedded mode the data dir is checked
 * (data-dir.ts), the database integrity-checked (sqlite-store.ts), and blobs no version references
 * are swept before anything writes; MongoDB mode sweeps nothing, since several nodes share GridFS
 * and a sweep would race their commits.
 */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  let store: Store;
  let blobs: BlobStore;
  if (options.mongodbUrl) {
    const client = new MongoClient(options.mongodbUrl, {
      writeConcern: { w: 'majority' },
      readConcern: { level: 'majority' },
      ignoreUndefined: true,
      serverSelectionTimeoutMS: 10_000,
    });
    const dbName = options.mongodbDb ?? dbNameOf(options.mongodbUrl);
    store = new MongoStore({ url: options.mongodbUrl, dbName, client });
    blobs = new GridFsBlobStore({ db: client.db(dbName) });
    try {
      await store.init();
    } catch (err) {
      await client.close();
      throw err;
    }
    return {
      ...guardStorage(store, blobs, false),
      close: async () => {
        await store.close();
        await blobs.close();
        await client.close();
      },
    };
  }
  let swept: Storage['swept'];
  if (options.dataDir) {
    store = new SqliteStore({ dataDir: options.dataDir });
    await store.init();
    const files = new FileBlobStore(options.dataDir);
    try {
      if (!options.sharedDataDir) swept = await files.sweep(await referencedBlobs(store));
    } catch (err) {
      await store.close();
      throw err;
    }
    blobs = files;
  } else {
    store = new MemoryStore();
    blobs = new MemoryBlobStore();
    await store.init();
  }
  return {
    ...guardStorage(store, blobs, options.dataDir !== undefined),
    ...(swept ? { swept } : {}),
    close: async () => {
      await store.close();
      await blobs.close();
    },
  };
}
