import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';

/** FLOTILLA_TEST_MONGODB_URL, or undefined; when undefined the MongoDB suites skip and say why. */
export const MONGO_URL = process.env.FLOTILLA_TEST_MONGODB_URL;

export function reportMongoSkip(suite: string): void {
  if (!MONGO_URL) {
    console.warn(
      `[skipped] ${suite}: FLOTILLA_TEST_MONGODB_URL is not set (no MongoDB server can be installed in this environment). ` +
        'Set it to a mongodb:// URL (a replica set runs the transactional path) to run this suite.',
    );
  }
}

/** A throwaway database per test, dropped by `drop`. */
export async function scratchDb(): Promise<{ client: MongoClient; dbName: string; drop: () => Promise<void> }> {
  const client = new MongoClient(MONGO_URL!, { writeConcern: { w: 'majority' }, ignoreUndefined: true });
  await client.connect();
  const dbName = `flotilla_test_${randomBytes(6).toString('hex')}`;
  return {
    client,
    dbName,
    drop: async () => {
      await client.db(dbName).dropDatabase();
      await client.close();
    },
  };
}
