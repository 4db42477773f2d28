import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AppError } from '@flotilla/protocol';
import type { BlobStore } from './blob-store.js';
import { ownerOnly } from './data-dir.js';
import { sha256Hex } from './memory-blob-store.js';

const SHA256 = /^[0-9a-f]{64}$/;
/** Temp files older than this at start-up belong to a crashed writer and are removed. */
const STALE_TMP_MS = 60 * 60 * 1000;

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Content-addressed blobs as files: `<dataDir>/blobs/<first two hex>/<sha256>`.
 *
 * put: write `<dataDir>/blobs/tmp/<random>`, fsync it, rename it into place, fsync the directory
 * that received it (and the blobs dir when the fan-out dir is new), so that a blob whose put
 * resolved survives a crash or power loss, and a crash mid-put leaves at most a temp file, never
 * a partial blob under its final name. A blob already present is verified and rewritten if it is
 * corrupt, so publishing the same bytes again heals it.
 *
 * get: reads the whole file and verifies its sha256; a mismatch throws FL_ERR_BLOB_CORRUPT and the
 * bytes are never returned.
 *
 * Blobs are the owner's alone: directories 0700, files 0600 (data-dir.ts). sweep(referenced)
 * removes blobs no version references (left by a commit that failed after its blobs were
 * written), run at start-up by openStorage before anything else writes.
 */
export class FileBlobStore implements BlobStore {
  readonly root: string;
  private readonly tmp: string;
  private ready: Promise<void> | null = null;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'blobs');
    this.tmp = join(this.root, 'tmp');
  }

  /** Creates the directories and removes stale temp files; called lazily by put/get. */
  init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(this.tmp, { recursive: true, mode: 0o700 });
      ownerOnly(this.root, 0o700);
      const now = Date.now();
      for (const name of await readdir(this.tmp)) {
        const p = join(this.tmp, name);
        const s = await stat(p).catch(() => null);
        if (s && now - s.mtimeMs > STALE_TMP_MS) await rm(p, { force: true });
      }
    })();
    return this.ready;
  }

  /** Where the blob lives (whether or not it exists). Throws FL_ERR_ARTIFACT_NOT_FOUND for a malformed hash. */
  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new AppError('FL_ERR_ARTIFACT_NOT_FOUND', { sha256, why: 'not a sha256 hex digest' });
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  async put(bytes: Uint8Array): Promise<{ sha256: string; size: number }> {
    await this.init();
    const sha256 = sha256Hex(bytes);
    const size = bytes.byteLength;
    const target = this.pathOf(sha256);
    if (await this.intact(target, sha256)) return { sha256, size };

    const dir = join(this.root, sha256.slice(0, 2));
    const created = (await mkdir(dir, { recursive: true, mode: 0o700 })) !== undefined;
    if (created) await fsyncPath(this.root);
    const tmp = join(this.tmp, `${sha256}.${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, target);
    await fsyncPath(dir);
    return { sha256, size };
  }

  /** Streams into a temp file while hashing, then fsync and rename as put does (the name is known only at the end). */
  async putStream(chunks: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
    await this.init();
    const tmp = join(this.tmp, `stream.${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx');
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const c of chunks) {
        hash.update(c);
        size += c.byteLength;
        await fh.write(c);
      }
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    const sha256 = hash.digest('hex');
    const target = this.pathOf(sha256);
    const dir = join(this.root, sha256.slice(0, 2));
    if ((await mkdir(dir, { recursive: true })) !== undefined) await fsyncPath(this.root);
    await rename(tmp, target);
    await fsyncPath(dir);
    return { sha256, size };
  }

  async get(sha256: string): Promise<Uint8Array | null> {
    await this.init();
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      if (err instanceof AppError) return null;
      throw err;
    }
    if (sha256Hex(bytes) !== sha256) throw new AppError('FL_ERR_BLOB_CORRUPT', { sha256 });
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async has(sha256: string): Promise<boolean> {
    if (!SHA256.test(sha256)) return false;
    return (await stat(this.pathOf(sha256)).catch(() => null))?.isFile() ?? false;
  }

  async close(): Promise<void> {}

  async probeWrite(): Promise<void> {
    await this.init();
    const path = join(this.tmp, `probe.${randomBytes(6).toString('hex')}`);
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(Buffer.alloc(64 * 1024));
        await fh.sync();
      } finally {
        await fh.close();
      }
    } finally {
      await rm(path, { force: true });
    }
  }

  /**
   * Remove every blob whose hash is not in `referenced`, and tighten the mode of those kept to
   * 0600. Only safe while nothing else writes blobs (start-up): a put in flight is unreferenced
   * until its version is committed.
   */
  async sweep(referenced: ReadonlySet<string>): Promise<{ removed: number; bytes: number }> {
    await this.init();
    let removed = 0;
    let bytes = 0;
    for (const fan of await readdir(this.root)) {
      if (!/^[0-9a-f]{2}$/.test(fan)) continue;
      for (const name of await readdir(join(this.root, fan))) {
        if (!SHA256.test(name)) continue; // not a blob: leave it
        const path = join(this.root, fan, name);
        if (referenced.has(name)) {
          ownerOnly(path, 0o600);
          continue;
        }
        bytes += (await stat(path).catch(() => null))?.size ?? 0;
        await rm(path, { force: true });
        removed++;
      }
    }
    return { removed, bytes };
  }

  private async intact(path: string, sha256: string): Promise<boolean> {
    try {
      return sha256Hex(await readFile(path)) === sha256;
    } catch {
      return false;
    }
  }
}
