import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBlobStore } from '../../server/src/store/file-blob-store.js';
import { blobContract } from './blob-contract.js';
import { tempDir } from './temp-dir.js';

blobContract('FileBlobStore', async () => {
  const t = await tempDir();
  const store = () => new FileBlobStore(t.dir);
  return {
    open: async () => store(),
    reopen: async () => store(),
    corrupt: async (sha256) => {
      const p = join(t.dir, 'blobs', sha256.slice(0, 2), sha256);
      const bytes = await readFile(p);
      bytes[bytes.length >> 1] ^= 0xff;
      await writeFile(p, bytes);
    },
    cleanup: t.remove,
  };
});

describe('FileBlobStore layout', () => {
  it('writes <dataDir>/blobs/<aa>/<sha256> and leaves no temp files', async () => {
    const t = await tempDir();
    const b = new FileBlobStore(t.dir);
    const { sha256 } = await b.put(new Uint8Array([1, 2, 3]));
    expect(await readdir(join(t.dir, 'blobs', sha256.slice(0, 2)))).toEqual([sha256]);
    expect(await readdir(join(t.dir, 'blobs', 'tmp'))).toEqual([]);
    await t.remove();
  });

  it('gives streamed and buffered blobs alike owner-only modes (0600 files, 0700 fan-out dirs)', async () => {
    const t = await tempDir();
    const b = new FileBlobStore(t.dir);
    async function* chunks() {
      yield new Uint8Array([9, 8, 7]);
      yield new Uint8Array([6, 5]);
    }
    const streamed = await b.putStream(chunks());
    const buffered = await b.put(new Uint8Array([4, 4, 4, 4]));
    for (const { sha256 } of [streamed, buffered]) {
      expect((await stat(join(t.dir, 'blobs', sha256.slice(0, 2), sha256))).mode & 0o777).toBe(0o600);
      expect((await stat(join(t.dir, 'blobs', sha256.slice(0, 2)))).mode & 0o777).toBe(0o700);
    }
    expect(streamed.size).toBe(5);
    expect(await b.get(streamed.sha256)).toEqual(new Uint8Array([9, 8, 7, 6, 5]));
    expect(await readdir(join(t.dir, 'blobs', 'tmp'))).toEqual([]);
    await t.remove();
  });

  it('refuses buffered and streamed writes alike when opened read-only, and leaves no file', async () => {
    const t = await tempDir();
    const ro = new FileBlobStore(t.dir, true);
    async function* one() {
      yield new Uint8Array([1]);
    }
    await expect(ro.put(new Uint8Array([1]))).rejects.toMatchObject({ code: 'FL_ERR_STORE_NOT_WRITABLE' });
    await expect(ro.putStream(one())).rejects.toMatchObject({ code: 'FL_ERR_STORE_NOT_WRITABLE' });
    expect(await readdir(t.dir)).toEqual([]);
    await t.remove();
  });
});
