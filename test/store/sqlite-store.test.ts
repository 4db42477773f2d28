import { existsSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../server/src/store/sqlite-store.js';
import { MIGRATIONS } from '../../server/src/store/sqlite-schema.js';
import { expectCode, task, version } from './fixtures.js';
import { storeContract } from './store-contract.js';
import { tempDir } from './temp-dir.js';

storeContract('SqliteStore', async () => {
  const t = await tempDir();
  return {
    open: async () => new SqliteStore({ dataDir: t.dir }),
    reopen: async () => new SqliteStore({ dataDir: t.dir }),
    cleanup: t.remove,
  };
});

describe('SqliteStore specifics', () => {
  it('creates <dataDir>/flotilla.db in WAL mode with synchronous=FULL and the current schema version', async () => {
    const t = await tempDir();
    const s = new SqliteStore({ dataDir: join(t.dir, 'nested', 'data') });
    await s.init();
    await s.createTask(task('a'), version('a', 1));
    expect(existsSync(join(t.dir, 'nested', 'data', 'flotilla.db'))).toBe(true);
    await s.close();
    const db = new BetterSqlite3(join(t.dir, 'nested', 'data', 'flotilla.db'), { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    await t.remove();
  });

  it('upgrades a database of an older schema in place, keeping its tasks (migration 4 adds screeningState)', async () => {
    const t = await tempDir();
    const db = new BetterSqlite3(join(t.dir, 'flotilla.db'));
    for (const m of MIGRATIONS.slice(0, 3)) db.exec(m);
    db.pragma('user_version = 3');
    const old = task('a', { strategyState: { m: [1] } });
    db.prepare(
      `INSERT INTO tasks (id, model_name, spec, plan, state, current_version, next_round, strategy_state, state_reason, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
    ).run(old.id, old.modelName, JSON.stringify(old.spec), JSON.stringify(old.plan), old.state, old.currentVersion, old.nextRound, JSON.stringify(old.strategyState), old.createdAt, old.updatedAt);
    db.close();
    const s = new SqliteStore({ dataDir: t.dir });
    await s.init();
    const got = await s.getTask('a');
    expect(got).toMatchObject({ id: 'a', strategyState: { m: [1] } });
    expect(got!.screeningState).toBeUndefined();
    expect((await s.updateTask('a', { screeningState: [0.25] })).screeningState).toEqual([0.25]);
    await s.close();
    const check = new BetterSqlite3(join(t.dir, 'flotilla.db'), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    check.close();
    await t.remove();
  });

  it('refuses a database written by a newer schema', async () => {
    const t = await tempDir();
    const db = new BetterSqlite3(join(t.dir, 'flotilla.db'));
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    const s = new SqliteStore({ dataDir: t.dir });
    await expectCode(s.init(), 'FL_ERR_CONFIG_INVALID');
    await t.remove();
  });

  it('answers FL_ERR_STORE_UNAVAILABLE after close and ping false', async () => {
    const t = await tempDir();
    const s = new SqliteStore({ dataDir: t.dir });
    await s.init();
    await s.close();
    expect(await s.ping()).toBe(false);
    await expectCode(s.getTask('a'), 'FL_ERR_STORE_UNAVAILABLE');
    await t.remove();
  });

  it('rolls the whole commit back when a statement inside it fails', async () => {
    const t = await tempDir();
    const s = new SqliteStore({ dataDir: t.dir });
    await s.init();
    await s.createTask(task('a'), version('a', 1));
    // A round record missing NOT NULL columns fails after the version insert inside the same transaction.
    const bad = { taskId: 'a', round: 1 } as never;
    await expect(
      s.commitRound({ task: { id: 'a', currentVersion: 2, nextRound: 2 }, round: bad, version: version('a', 2), by: 'x' }),
    ).rejects.toThrow();
    expect(await s.getVersion('a', 2)).toBeNull();
    expect((await s.getAlias('a', 'latest'))!.version).toBe(1);
    await s.close();
    await t.remove();
  });
});
