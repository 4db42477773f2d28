import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type FlotillaApp } from '@flotilla/server';
import { httpCall } from '../helpers/http-call.js';
import { tempDir } from './temp-dir.js';

const ADMIN = 'admin-token-for-storage-tests-0123';
const BIN = fileURLToPath(new URL('../../server/bin/flotilla.mjs', import.meta.url));
const mode = (p: string) => statSync(p).mode & 0o777;
const opts = (dataDir: string) => ({ dataDir, adminToken: ADMIN, processMetrics: false, authRateLimit: false as const });

/** Mount a tmpfs at `dir` (root only); returns the reason when this machine cannot. */
function tryMount(dir: string, options: string): string | null {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `mount -t tmpfs failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
}
const umount = (dir: string) => execFileSync('umount', [dir], { stdio: 'pipe' });

/** Every blob file under <dataDir>/blobs (not the temp dir). */
function blobFiles(dataDir: string): string[] {
  const root = join(dataDir, 'blobs');
  return readdirSync(root)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => readdirSync(join(root, d)).map((f) => join(root, d, f)));
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
async function scratch(): Promise<string> {
  const t = await tempDir('flotilla-hygiene-');
  cleanups.push(t.remove);
  return t.dir;
}
async function open(dataDir: string): Promise<FlotillaApp> {
  const app = await buildApp(opts(dataDir));
  cleanups.push(() => app.close());
  return app;
}

describe('storage hygiene (real SQLite and files)', () => {
  it('refuses to start on a database that fails its integrity check, naming the file', async () => {
    const dir = await scratch();
    const app = await buildApp(opts(dir));
    await app.flotilla.coordinator.createTask({ id: 't1', preset: 'tiny-mlp', plan: { clientsPerRound: 2 } });
    await app.close();
    const db = join(dir, 'flotilla.db');
    // Overwrite the start of page 2 (a b-tree page: the first table created) with junk.
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 4096);
    closeSync(fd);
    const err = await buildApp(opts(dir)).then(
      (a) => (cleanups.push(() => a.close()), null),
      (e) => e,
    );
    expect(err, 'started on a corrupt database').not.toBeNull();
    expect(err.code).toBe('FL_ERR_STORE_CORRUPT');
    expect(`${err.message} ${JSON.stringify(err.details)}`).toContain(db);
  });

  it("collects a failed commit's orphan blobs at the next start, keeping every referenced one", async () => {
    const dir = await scratch();
    let app = await buildApp(opts(dir));
    await app.flotilla.coordinator.createTask({ id: 't1', preset: 'tiny-mlp', plan: { clientsPerRound: 2 } });
    const task = (await app.flotilla.store.getTask('t1'))!;
    const before = blobFiles(dir).sort();
    const v1 = (await app.flotilla.store.getVersion('t1', 1))!;
    // A round's commit that fails in the store after its blobs were written (version 1 exists).
    const weights = await app.flotilla.registry.readWeights(v1);
    const failed = app.flotilla.registry.commitRound({
      task: { id: 't1', currentVersion: 1, nextRound: 2 },
      round: { taskId: 't1', round: 1, state: 'done', baseVersion: 1, selected: [], reported: [], rejected: [], dropped: [], startedAt: 1, deadline: 2, trainMetrics: {}, evalMetrics: {}, centralMetrics: {}, bytesUp: 0, bytesDown: 0 },
      version: { model: 't1', version: 1, spec: task.spec, weights: weights.map((x) => x + 0.25) },
      by: 'test',
    });
    await expect(failed).rejects.toMatchObject({ code: 'FL_ERR_VERSION_IMMUTABLE' });
    expect(blobFiles(dir).length).toBeGreaterThan(before.length);
    await app.close();
    app = await open(dir);
    expect(blobFiles(dir).sort()).toEqual(before);
    const res = await app.inject({ method: 'GET', url: '/api/v1/models/t1/versions/1/weights.bin', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.statusCode).toBe(200);
  });

  it('creates the data dir 0700 and the database, WAL and blobs 0600, and tightens an existing 0644 database', async () => {
    const dataDir = join(await scratch(), 'data');
    const app = await buildApp(opts(dataDir));
    await app.flotilla.coordinator.createTask({ id: 't1', preset: 'tiny-mlp', plan: { clientsPerRound: 2 } });
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(join(dataDir, 'flotilla.db'))).toBe(0o600);
    expect(existsSync(join(dataDir, 'flotilla.db-wal'))).toBe(true);
    expect(mode(join(dataDir, 'flotilla.db-wal'))).toBe(0o600);
    const blobs = blobFiles(dataDir);
    expect(blobs.length).toBeGreaterThan(0);
    for (const b of blobs) expect(mode(b), b).toBe(0o600);
    expect(mode(join(dataDir, 'blobs'))).toBe(0o700);
    await app.close();
    chmodSync(join(dataDir, 'flotilla.db'), 0o644);
    chmodSync(blobs[0], 0o644);
    await open(dataDir);
    expect(mode(join(dataDir, 'flotilla.db'))).toBe(0o600);
    expect(mode(blobs[0])).toBe(0o600);
  });

  it('fails on a read-only data dir with an error naming the path', async (ctx) => {
    const dir = await scratch();
    const dataDir = join(dir, 'ro');
    mkdirSync(dataDir);
    const why = tryMount(dataDir, 'ro,size=1m');
    if (why) {
      if (process.getuid?.() === 0) return ctx.skip(`read-only data dir: ${why}`);
      chmodSync(dataDir, 0o500); // not root: permissions make it read-only
      cleanups.push(() => chmodSync(dataDir, 0o700));
    } else cleanups.push(() => void umount(dataDir));
    const err = await buildApp(opts(dataDir)).then(
      (a) => (cleanups.push(() => a.close()), null),
      (e) => e,
    );
    expect(err).not.toBeNull();
    expect(err.code).toBe('FL_ERR_STORE_NOT_WRITABLE');
    expect(`${err.message} ${JSON.stringify(err.details)}`).toContain(dataDir);
  });

  it('answers 503 FL_ERR_STORE_FULL on a full disk, and /readyz is 503 until a write succeeds again (real tmpfs)', async (ctx) => {
    const dataDir = join(await scratch(), 'small');
    mkdirSync(dataDir);
    const why = tryMount(dataDir, 'size=4m,mode=0700');
    if (why) {
      console.log(`skipped: full-disk test needs a small tmpfs (${why})`);
      return ctx.skip(why);
    }
    cleanups.push(() => void umount(dataDir));
    const app = await open(dataDir);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const call = (method: string, path: string, body?: unknown) => httpCall(url, method, path, ADMIN, body);
    expect((await call('GET', '/readyz')).status).toBe(200);
    // Fill the file system to the last page.
    const filler = join(dataDir, 'filler');
    const fd = openSync(filler, 'w');
    try {
      const chunk = Buffer.alloc(4096, 1);
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    const refused = await call('POST', '/api/v1/tasks', { id: 'full', preset: 'tiny-mlp', plan: { clientsPerRound: 2 } });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('FL_ERR_STORE_FULL');
    const notReady = await call('GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.json).toMatchObject({ status: 'not ready', storage: 'full' });
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/api/v1/tasks')).status).toBe(200); // reads still answer
    rmSync(filler);
    expect((await call('GET', '/readyz')).status).toBe(200);
    expect((await call('POST', '/api/v1/tasks', { id: 'full', preset: 'tiny-mlp', plan: { clientsPerRound: 2 } })).status).toBe(201);
  });
});

describe('bootstrap token files', () => {
  /** Run `flotilla serve` on `dataDir` until it listens (then stop it) or exits; its stderr and exit code. */
  function serve(dataDir: string): Promise<{ code: number | null; stderr: string; listened: boolean }> {
    const env = { ...process.env };
    delete env.FLOTILLA_ADMIN_TOKEN;
    delete env.FLOTILLA_DEVICE_TOKEN;
    const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let listened = false;
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.on('data', (d: Buffer) => {
      if (!listened && /flotilla listening/.test(d.toString())) {
        listened = true;
        proc.kill('SIGTERM');
      }
    });
    return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stderr, listened })));
  }

  it('tightens a group- or world-readable admin-token file to 0600 with a loud warning naming it', async () => {
    const dir = await scratch();
    const file = join(dir, 'admin-token');
    writeFileSync(file, 'a-perfectly-long-admin-token-0123\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const run = await serve(dir);
    expect(run.listened, run.stderr).toBe(true);
    expect(run.stderr).toMatch(/warning/i);
    expect(run.stderr).toContain(file);
    expect(mode(file)).toBe(0o600);
  });

  it('refuses an admin-token file shorter than 16 characters instead of replacing it', async () => {
    const dir = await scratch();
    const file = join(dir, 'admin-token');
    writeFileSync(file, 'short\n', { mode: 0o600 });
    const run = await serve(dir);
    expect(run.listened).toBe(false);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('FL_ERR_CONFIG_INVALID');
    expect(run.stderr).toContain(file);
    expect(statSync(file).size).toBe(6); // untouched
  });
});
