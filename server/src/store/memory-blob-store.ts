import { createHash } from 'node:crypto';
import { AppError } from '@flotilla/protocol';
import type { BlobStore } from './blob-store.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Blobs in process memory, for tests and throwaway runs. Same contract as the durable blob stores. */
export class MemoryBlobStore implements BlobStore {
  private blobs = new Map<string, Uint8Array>();
  async put(bytes: Uint8Array): Promise<{ sha256: string; size: number }> {
    const sha256 = sha256Hex(bytes);
    if (!this.blobs.has(sha256)) this.blobs.set(sha256, bytes.slice());
    return { sha256, size: bytes.byteLength };
  }
  async putStream(chunks: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c.slice());
    return this.put(Buffer.concat(parts));
  }
  async get(sha256: string): Promise<Uint8Array | null> {
    const b = this.blobs.get(sha256);
    if (!b) return null;
    if (sha256Hex(b) !== sha256) throw new AppError('FL_ERR_BLOB_CORRUPT', { sha256 });
    return b.slice();
  }
  async has(sha256: string): Promise<boolean> {
    return this.blobs.has(sha256);
  }
  async close(): Promise<void> {}
}
