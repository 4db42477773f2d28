import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { openStorage, type Storage } from '../../server/src/store/open-storage.js';
import { MONGO_URL, reportMongoSkip } from './mongo-env.js';
import { tempDir } from './temp-dir.js';
import { synthetic } from '../helpers/synthetic.js';

/**
 * Crash safety end to end: a real `flotilla serve` child process is killed with SIGKILL while a
 * round is in flight, restarted on the same storage and port, and the devices (real SDK clients)
 * reconnect and keep training. Afterwards the storage must hold versions 1..N with no gap or
 * duplicate, each a child of the one before, every artifact verifying its sha256, and more
 * versions than existed at the crash. Runs on a SQLite data dir, and on MongoDB + GridFS when
 * FLOTILLA_TEST_MONGODB_URL is set.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN = 'resume-admin-token-0123456789';
const DEVICE = 'resume-device-token-0123456789';


async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Start `flotilla serve` and resolve once it prints its listening line. */
function serve(storageArgs: string[], port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['scripts/dev/flotilla.mjs', 'serve', '--port', String(port), ...storageArgs, '--log-level', 'warn'], {
    cwd: ROOT,
    env: { ...process.env, FLOTILLA_ADMIN_TOKEN: ADMIN, FLOTILLA_DEVICE_TOKEN: DEVICE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 60_000);
    child.stdout!.on('data', (d) => {
      if (String(d).includes('flotilla listening')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
}

async function api(base: string, path: string, init: RequestInit = {}): Promise<any> {
  const r = await fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...init.headers } });
  const body = await r.json();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const x = await f().catch(() => undefined);
    if (x) return x;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const kill = (c: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });

interface Backend {
  name: string;
  skip: boolean;
  /** Flags for `flotilla serve` and a way to open the same storage from the test. */
  prepare(dataDir: string): { args: string[]; open: () => Promise<Storage>; drop?: () => Promise<void> };
}

const backends: Backend[] = [
  { name: 'SQLite data dir', skip: false, prepare: (dataDir) => ({ args: ['--data-dir', dataDir], open: () => openStorage({ dataDir }) }) },
  {
    name: 'MongoDB + GridFS',
    skip: !MONGO_URL,
    prepare: (dataDir) => {
      const db = `flotilla_resume_${Date.now().toString(36)}`;
      const url = MONGO_URL ? withDb(MONGO_URL, db) : '';
      return {
        args: ['--data-dir', dataDir, '--mongodb-url', url],
        open: () => openStorage({ mongodbUrl: url }),
        drop: async () => {
          const c = new MongoClient(url);
          await c.db(db).dropDatabase();
          await c.close();
        },
      };
    },
  },
];

/** The URL with its database path replaced by `db` (query kept). */
function withDb(url: string, db: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(url);
  return m ? `${m[1]}/${db}${m[2] ?? ''}` : url;
}

reportMongoSkip('resume after SIGKILL on MongoDB');

for (const backend of backends) describe.skipIf(backend.skip)(`resume after SIGKILL (child-process coordinator, ${backend.name})`, () => {
  const clients: FlotillaClient[] = [];
  let child: ChildProcess | null = null;
  let cleanup = async () => {};
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    if (child) await kill(child);
    await cleanup();
  });

  it('keeps versions contiguous and verifiable across two crashes mid-round, and training continues', async () => {
    const dir = await tempDir('flotilla-resume-');
    const storage = backend.prepare(dir.dir);
    cleanup = async () => {
      await storage.drop?.();
      await dir.remove();
    };
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    child = await serve(storage.args, port);
    await api(base, '/api/v1/tasks', {
      method: 'POST',
      body: JSON.stringify({
        id: 'resume',
        preset: 'tiny-mlp',
        plan: { clientsPerRound: 2, overSelect: 1, maxRounds: 10_000, epochs: 1, batchSize: 32, learningRate: 0.1, roundDeadlineMs: 20_000 },
        start: true,
      }),
    });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 3; i++) {
      const data = synthetic(96, 7 + i);
      const c = new FlotillaClient({ url: base, token: DEVICE, taskId: 'resume', data: { train: () => data }, trainer, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } });
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.start()));

    const atCrash: number[] = [];
    const inFlight: Array<{ round: number; state: string }> = [];
    for (let crash = 0; crash < 2; crash++) {
      const before = atCrash.length ? atCrash[atCrash.length - 1] : 1;
      await until(`versions beyond ${before + 1}`, async () => (await api(base, '/api/v1/tasks/resume')).currentVersion >= before + 2 || undefined);
      // Kill while a round is being trained (the coordinator saves each round as it starts).
      const running = await until('a round in flight', async () => {
        const [r] = (await api(base, '/api/v1/tasks/resume/rounds?limit=1')).rounds;
        return r && (r.state === 'training' || r.state === 'selecting') ? r : undefined;
      });
      await kill(child);
      inFlight.push({ round: running.round, state: running.state });
      const s = await storage.open();
      atCrash.push((await s.store.getTask('resume'))!.currentVersion);
      await s.close();
      child = await serve(storage.args, port);
    }
    const last = atCrash[atCrash.length - 1];
    await until('training to continue after the restart', async () => (await api(base, '/api/v1/tasks/resume')).currentVersion >= last + 2 || undefined, 90_000);
    const resumed = await api(base, '/api/v1/tasks/resume');
    expect(resumed.state).toBe('running');
    await Promise.all(clients.map((c) => c.stop()));
    await kill(child);
    child = null;

    const opened = await storage.open();
    const { store, blobs } = opened;
    const task = (await store.getTask('resume'))!;
    const versions = (await store.listVersions('resume', { includeArchived: true })).reverse();
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
    expect(task.currentVersion).toBe(versions.length);
    expect((await store.getAlias('resume', 'latest'))!.version).toBe(versions.length);
    for (const v of versions) {
      if (v.version > 1) expect(v.parentVersion).toBe(v.version - 1);
      for (const a of v.artifacts) {
        const bytes = await blobs.get(a.sha256); // throws FL_ERR_BLOB_CORRUPT on a bad checksum
        expect(bytes?.byteLength, `${v.version}/${a.name}`).toBe(a.size);
      }
    }
    // Rounds: each committed version came from exactly one round; the rounds in flight at the crashes were not lost silently.
    const rounds = await store.listRounds('resume');
    const committed = rounds.filter((r) => r.state === 'done').map((r) => r.committedVersion);
    expect(new Set(committed).size).toBe(committed.length);
    expect(committed.sort((a, b) => a! - b!)).toEqual(versions.slice(1).map((v) => v.version));
    for (const f of inFlight) {
      const r = rounds.find((x) => x.round === f.round)!;
      expect(['done', 'failed']).toContain(r.state);
    }
    console.log(`resume: versions at the crashes ${atCrash.join(', ')}; rounds in flight ${JSON.stringify(inFlight)}; ${versions.length} versions at the end`);
    expect(versions.length).toBeGreaterThanOrEqual(last + 2);
    await opened.close();
  }, 240_000);
});
