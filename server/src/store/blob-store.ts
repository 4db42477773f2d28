/**
 * Content-addressed blobs (sha256). Contracts:
 *  - put is idempotent and durable before it resolves (temp file + fsync + rename, or GridFS);
 *  - get verifies the checksum and throws FL_ERR_BLOB_CORRUPT rather than return bad bytes;
 *  - get of an unknown hash returns null;
 *  - putStream stores the concatenation of the chunks with put's guarantees while holding only
 *    O(chunk) of it in memory; if the source throws, nothing is stored and the error propagates.
 */
export interface BlobStore {
  put(bytes: Uint8Array): Promise<{ sha256: string; size: number }>;
  putStream(chunks: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }>;
  get(sha256: string): Promise<Uint8Array | null>;
  has(sha256: string): Promise<boolean>;
  close(): Promise<void>;
  /**
   * Optional: a small durable write and its removal, where the blobs live; rejects while that
   * file system is full. /readyz calls it while storage is marked full (storage-health.ts).
   */
  probeWrite?(): Promise<void>;
}
