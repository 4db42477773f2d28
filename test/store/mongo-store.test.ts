import { describe } from 'vitest';
import { MongoStore } from '../../server/src/store/mongo-store.js';
import { MONGO_URL, reportMongoSkip, scratchDb } from './mongo-env.js';
import { storeContract } from './store-contract.js';

reportMongoSkip('Store contract: MongoStore');

describe.skipIf(!MONGO_URL)('MongoStore (FLOTILLA_TEST_MONGODB_URL)', () => {
  storeContract('MongoStore', async () => {
    const s = await scratchDb();
    const open = async () => new MongoStore({ url: MONGO_URL!, dbName: s.dbName });
    return { open, reopen: open, cleanup: s.drop };
  });
});
