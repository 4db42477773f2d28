import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Registry } from '../../server/src/registry/registry.js';
import { FileBlobStore } from '../../server/src/store/file-blob-store.js';
import { SqliteStore } from '../../server/src/store/sqlite-store.js';
import { tempDir } from './temp-dir.js';

/**
 * Publishing is atomic under SIGKILL: a child publishes versions in a tight loop (blobs, then one
 * SQLite transaction) and is killed at random moments, then restarted on the same data dir.
 * Every version any run reported as committed must be there; versions are 1..N without gaps;
 * `latest` is N; every artifact of every version reads back with a verified checksum; and no
 * version exists that names a missing blob (no half-version).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('./publish-loop.ts', import.meta.url));

function runAndKill(dataDir: string, afterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', './scripts/dev-loader.mjs', CHILD, dataDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const reported: number[] = [];
    let buf = '';
    let err = '';
    let timer: ReturnType<typeof setTimeout> | null = null;
    child.stdout.on('data', (d) => {
      buf += String(d);
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) reported.push(Number(l));
      // Start the clock at the first commit, so that the kill lands in the publishing loop.
      timer ??= setTimeout(() => child.kill('SIGKILL'), afterMs);
    });
    child.stderr.on('data', (d) => (err += String(d)));
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(reported);
      else reject(new Error(`publisher exited ${code}: ${err}`));
    });
  });
}

describe('publish under SIGKILL (SQLite + file blobs)', () => {
  it('never loses a reported version nor exposes a half-written one', async () => {
    const dir = await tempDir('flotilla-crash-');
    const reported: number[] = [];
    for (let i = 0; i < 5; i++) reported.push(...(await runAndKill(dir.dir, 50 + Math.floor(Math.random() * 400))));
    const store = new SqliteStore({ dataDir: dir.dir });
    await store.init();
    const reg = new Registry(store, new FileBlobStore(dir.dir), { cacheBytes: 0 });
    const versions = (await store.listVersions('crash', { includeArchived: true })).map((v) => v.version).reverse();
    console.log(`crash-publish: ${reported.length} versions reported over 5 killed runs, ${versions.length} stored`);
    expect(versions.length).toBeGreaterThan(5);
    expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
    for (const v of reported) expect(versions).toContain(v);
    expect((await store.getAlias('crash', 'latest'))!.version).toBe(versions.length);
    for (const n of versions) {
      const v = await reg.getVersion('crash', n);
      for (const a of v.artifacts) expect((await reg.readArtifact(v, a.name)).bytes.byteLength).toBe(a.size);
      const w = await reg.readWeights(v);
      expect(w[1]).toBeCloseTo(Math.sin(n * 1000 + 1), 6);
    }
    await store.close();
    await dir.remove();
  }, 120_000);
});
