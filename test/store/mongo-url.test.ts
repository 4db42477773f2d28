import { describe, expect, it } from 'vitest';
import { dbNameOf } from '../../server/src/store/mongo-store.js';

describe('MongoStore database name from the URL', () => {
  it('takes the path of single-host, multi-host and SRV URLs, else flotilla', () => {
    expect(dbNameOf('mongodb://mongo:27017/flotilla?replicaSet=rs0')).toBe('flotilla');
    expect(dbNameOf('mongodb://a:1,b:2,c:3/prod_db?replicaSet=x&w=majority')).toBe('prod_db');
    expect(dbNameOf('mongodb+srv://user:p%40ss@cluster.example.net/ml%20db')).toBe('ml db');
    expect(dbNameOf('mongodb://localhost:27017')).toBe('flotilla');
    expect(dbNameOf('mongodb://localhost:27017/?directConnection=true')).toBe('flotilla');
  });
});
