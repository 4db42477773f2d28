import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GridFSBucket, type Db, type GridFSFile } from 'mongodb';
import { AppError } from '@flotilla/protocol';
import type { BlobStore } from './blob-store.js';
import { sha256Hex } from './memory-blob-store.js';

const SHA256 = /^[0-9a-f]{64}$/;

export interface GridFsBlobStoreOptions {
  db: Db;
  /** GridFS bucket; its collections are `<bucket>.files` and `<bucket>.chunks`. */
  bucketName?: string;
  /** Called by close(): whoever owns the MongoClient closes it. */
  onClose?: () => Promise<void>;
}

/**
 * Content-addressed blobs in GridFS, so that several coordinators share artifacts. A blob is the
 * GridFS file whose filename is its sha256.
 *
 * put: uploads the chunks, then the files document (GridFS writes it last), all with the
 * database's majority write concern; a crash mid-upload leaves orphan chunks but no visible file.
 * Concurrent puts of the same bytes may create two identical files; get reads the newest, which
 * is harmless. A stored blob that fails its checksum is replaced by the next put of those bytes.
 *
 * get: downloads the newest file of that name and verifies its sha256; a mismatch throws
 * FL_ERR_BLOB_CORRUPT and the bytes are never returned.
 */
export class GridFsBlobStore implements BlobStore {
  private readonly bucket: GridFSBucket;

  constructor(private readonly options: GridFsBlobStoreOptions) {
    this.bucket = new GridFSBucket(options.db, { bucketName: options.bucketName ?? 'blobs' });
  }

  async put(bytes: Uint8Array): Promise<{ sha256: string; size: number }> {
    const sha256 = sha256Hex(bytes);
    const size = bytes.byteLength;
    const existing = await this.newest(sha256);
    if (existing) {
      const stored = await this.download(existing);
      if (sha256Hex(stored) === sha256) return { sha256, size };
      await this.bucket.delete(existing._id);
    }
    const upload = this.bucket.openUploadStream(sha256, { metadata: { sha256, size } });
    await pipeline(Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]), upload);
    return { sha256, size };
  }

  /**
   * Uploads under a provisional name while hashing, then renames the file to its sha256 (GridFS
   * writes the files document last, so an aborted stream leaves only orphan chunks).
   */
  async putStream(chunks: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
    const hash = createHash('sha256');
    let size = 0;
    const upload = this.bucket.openUploadStream(`partial.${Date.now()}.${Math.random().toString(36).slice(2)}`);
    async function* counted(): AsyncIterable<Buffer> {
      for await (const c of chunks) {
        hash.update(c);
        size += c.byteLength;
        yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      }
    }
    try {
      await pipeline(Readable.from(counted()), upload);
    } catch (err) {
      await upload.abort().catch(() => undefined);
      throw err;
    }
    const sha256 = hash.digest('hex');
    if (await this.newest(sha256)) {
      await this.bucket.delete(upload.id);
      return { sha256, size };
    }
    await this.bucket.rename(upload.id, sha256);
    return { sha256, size };
  }

  async get(sha256: string): Promise<Uint8Array | null> {
    if (!SHA256.test(sha256)) return null;
    const file = await this.newest(sha256);
    if (!file) return null;
    const bytes = await this.download(file);
    if (sha256Hex(bytes) !== sha256) throw new AppError('FL_ERR_BLOB_CORRUPT', { sha256 });
    return bytes;
  }

  async has(sha256: string): Promise<boolean> {
    if (!SHA256.test(sha256)) return false;
    return (await this.newest(sha256)) !== null;
  }

  async close(): Promise<void> {
    await this.options.onClose?.();
  }

  private newest(sha256: string): Promise<GridFSFile | null> {
    return this.bucket.find({ filename: sha256 }).sort({ uploadDate: -1 }).limit(1).next();
  }

  private async download(file: GridFSFile): Promise<Uint8Array> {
    const parts: Buffer[] = [];
    for await (const chunk of this.bucket.openDownloadStream(file._id)) parts.push(chunk as Buffer);
    const all = Buffer.concat(parts);
    return new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
  }
}
