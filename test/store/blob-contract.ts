import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../server/src/store/blob-store.js';
import { expectCode } from './fixtures.js';

/**
 * The one BlobStore contract suite. `corrupt(sha256)`, when given, damages the stored bytes of a
 * blob behind the store's back (flip a byte on disk, rewrite a GridFS chunk), so that the suite
 * can check that get never returns bad bytes.
 */
export interface BlobHarness {
  open(): Promise<BlobStore>;
  corrupt?: (sha256: string) => Promise<void>;
  reopen?: () => Promise<BlobStore>;
  cleanup?: () => Promise<void>;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function blobContract(name: string, makeHarness: () => Promise<BlobHarness>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let h: BlobHarness;
    let b: BlobStore;
    beforeEach(async () => {
      h = await makeHarness();
      b = await h.open();
    });
    afterEach(async () => {
      await b.close();
      await h.cleanup?.();
    });

    it('stores bytes under their sha256 and returns them', async () => {
      const bytes = new Uint8Array(100_003).map((_, i) => (i * 31) & 0xff);
      const ref = await b.put(bytes);
      expect(ref).toEqual({ sha256: sha(bytes), size: bytes.byteLength });
      expect(await b.has(ref.sha256)).toBe(true);
      const got = await b.get(ref.sha256);
      expect(got).not.toBeNull();
      expect(Buffer.from(got!).equals(Buffer.from(bytes))).toBe(true);
    });

    it('putStream stores the concatenated chunks under their sha256; a failing source stores nothing', async () => {
      const bytes = new Uint8Array(300_001).map((_, i) => (i * 7) & 0xff);
      async function* chunks(fail: boolean) {
        for (let o = 0; o < bytes.length; o += 65_536) {
          yield bytes.subarray(o, Math.min(bytes.length, o + 65_536));
          if (fail && o > 100_000) throw new Error('source failed');
        }
      }
      await expect(b.putStream(chunks(true))).rejects.toThrow('source failed');
      expect(await b.has(sha(bytes))).toBe(false);
      const ref = await b.putStream(chunks(false));
      expect(ref).toEqual({ sha256: sha(bytes), size: bytes.byteLength });
      expect(Buffer.from((await b.get(ref.sha256))!).equals(Buffer.from(bytes))).toBe(true);
      expect(await b.putStream(chunks(false))).toEqual(ref);
    });

    it('is idempotent and keeps a copy, not the caller buffer', async () => {
      const bytes = new Uint8Array([1, 2, 3, 4]);
      const a = await b.put(bytes);
      const again = await b.put(bytes);
      expect(again).toEqual(a);
      bytes[0] = 9;
      expect([...(await b.get(a.sha256))!]).toEqual([1, 2, 3, 4]);
    });

    it('stores the empty blob', async () => {
      const ref = await b.put(new Uint8Array(0));
      expect(ref.size).toBe(0);
      expect((await b.get(ref.sha256))!.byteLength).toBe(0);
    });

    it('answers null / false for unknown or malformed hashes', async () => {
      expect(await b.get('0'.repeat(64))).toBeNull();
      expect(await b.has('0'.repeat(64))).toBe(false);
      expect(await b.get('../../etc/passwd')).toBeNull();
      expect(await b.has('../../etc/passwd')).toBe(false);
    });

    it('never serves corrupt bytes: get throws FL_ERR_BLOB_CORRUPT, and a new put heals it', async (ctx) => {
      if (!h.corrupt) ctx.skip();
      const bytes = new Uint8Array(4096).fill(7);
      const { sha256 } = await b.put(bytes);
      await h.corrupt!(sha256);
      await expectCode(b.get(sha256), 'FL_ERR_BLOB_CORRUPT');
      await b.put(bytes);
      expect(Buffer.from((await b.get(sha256))!).equals(Buffer.from(bytes))).toBe(true);
    });

    it('keeps blobs across reopen (durable stores)', async (ctx) => {
      if (!h.reopen) ctx.skip();
      const { sha256 } = await b.put(new Uint8Array([5, 6, 7]));
      await b.close();
      b = await h.reopen!();
      expect([...(await b.get(sha256))!]).toEqual([5, 6, 7]);
    });
  });
}
