import { MongoClient } from 'mongodb';
import { AppError } from '../errors.js';
import { FileBlobStore } from '../store/file-blob-store.js';
import { GridFsBlobStore } from '../store/gridfs-blob-store.js';
import { MongoStore, dbNameOf } from '../store/mongo-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { StoreRegistrySource } from './store-registry-source.js';

/**
 * The coordinators' store opened for reading only, as a registry source for serving replicas:
 * MongoDB + GridFS (`--mongodb-url`; nothing created, no index built) or an existing SQLite data
 * dir (`--data-dir`; opened read-only, never migrated or swept). Unlike open-storage.ts nothing
 * here writes.
 */
export async function openReadOnlySource(opts: { mongodbUrl?: string; dataDir?: string }): Promise<StoreRegistrySource> {
  if (opts.mongodbUrl) {
    const client = new MongoClient(opts.mongodbUrl, { readConcern: { level: 'majority' }, ignoreUndefined: true, serverSelectionTimeoutMS: 10_000 });
    const dbName = dbNameOf(opts.mongodbUrl);
    const store = new MongoStore({ url: opts.mongodbUrl, dbName, client, readonly: true });
    try {
      await store.init();
    } catch (err) {
      await client.close();
      throw err;
    }
    const blobs = new GridFsBlobStore({ db: client.db(dbName) });
    return new StoreRegistrySource(store, blobs, async () => {
      await blobs.close();
      await client.close();
    });
  }
  if (!opts.dataDir) throw new AppError('FL_ERR_CONFIG_INVALID', { why: 'a read-only store needs --mongodb-url or --data-dir' });
  const store = new SqliteStore({ dataDir: opts.dataDir, readonly: true });
  await store.init();
  const blobs = new FileBlobStore(opts.dataDir, true);
  return new StoreRegistrySource(store, blobs, async () => {
    await store.close();
    await blobs.close();
  });
}
