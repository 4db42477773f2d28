import { accessSync, chmodSync, closeSync, constants, mkdirSync, openSync, statSync } from 'node:fs';
import { AppError } from '../errors.js';

/**
 * The embedded data dir (`<dataDir>/flotilla.db`, `blobs/`, the bootstrap token files) holds
 * model weights, payload logs and credentials, so it is the owner's alone: created 0700, files
 * 0600. Contracts:
 *  - prepareDataDir creates the directory (0700) or checks an existing one, and throws
 *    FL_ERR_STORE_NOT_WRITABLE naming the path when it cannot be created or written (a read-only
 *    mount, missing permissions), before SQLite can fail with a message that names nothing;
 *  - ownerOnly tightens a file or directory that group or others may use (best effort: a file
 *    owned by someone else, or on a read-only mount, is left as it is).
 */
export function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new AppError('FL_ERR_STORE_NOT_WRITABLE', { path: dir, why: (err as NodeJS.ErrnoException).code ?? String(err) });
  }
  ownerOnly(dir, 0o700);
}

/** chmod `path` to `mode` when group or others have any access; absent paths are ignored. */
export function ownerOnly(path: string, mode: 0o600 | 0o700): void {
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, mode);
  } catch {
    // absent, not ours, or read-only: nothing to tighten here
  }
}

/** Create `path` empty with mode 0600 unless it exists (so that SQLite, which gives -wal and -shm files the database's mode, never makes them 0644). */
export function touchOwnerOnly(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
}
