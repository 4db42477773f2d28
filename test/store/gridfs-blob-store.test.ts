import { Binary } from 'mongodb';
import { describe } from 'vitest';
import { GridFsBlobStore } from '../../server/src/store/gridfs-blob-store.js';
import { blobContract } from './blob-contract.js';
import { MONGO_URL, reportMongoSkip, scratchDb } from './mongo-env.js';

reportMongoSkip('BlobStore contract: GridFsBlobStore');

describe.skipIf(!MONGO_URL)('GridFsBlobStore (FLOTILLA_TEST_MONGODB_URL)', () => {
  blobContract('GridFsBlobStore', async () => {
    const s = await scratchDb();
    const db = s.client.db(s.dbName);
    const open = async () => new GridFsBlobStore({ db });
    return {
      open,
      reopen: open,
      corrupt: async (sha256) => {
        const file = await db.collection('blobs.files').findOne({ filename: sha256 });
        const chunk = await db.collection('blobs.chunks').findOne({ files_id: file!._id, n: 0 });
        const data = Buffer.from((chunk!.data as Binary).buffer);
        data[0] ^= 0xff;
        await db.collection('blobs.chunks').updateOne({ _id: chunk!._id }, { $set: { data: new Binary(data) } });
      },
      cleanup: s.drop,
    };
  });
});
