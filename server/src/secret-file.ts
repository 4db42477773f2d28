import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { argSafeRandomText } from './auth/tokens.js';
import { AppError } from './errors.js';

/** Shortest bootstrap token accepted, from a file or the environment (config.ts). */
export const MIN_SECRET_LENGTH = 16;

/**
 * A token kept in `<dir>/<name>` (mode 0600): read if present, else generated and written
 * atomically (temp file + rename, the dir created 0700). Contracts:
 *  - a file whose token is shorter than MIN_SECRET_LENGTH (empty included) is an error
 *    (FL_ERR_CONFIG_INVALID naming the file), never silently replaced: an operator wrote it;
 *  - a file group or others may read is tightened to 0600 and `warning` says so, naming the file
 *    and advising rotation (whoever read it holds the credential). The server still starts, as
 *    refusing would not undo the exposure; the warning is printed loudly at start-up.
 */
export function loadOrCreateSecret(dir: string, name: string): { token: string; path: string; created: boolean; warning?: string } {
  const path = join(dir, name);
  let text: string | null = null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AppError('FL_ERR_CONFIG_INVALID', { path, why: (err as Error).message });
  }
  if (text !== null) {
    const token = text.trim();
    if (token.length < MIN_SECRET_LENGTH) {
      throw new AppError('FL_ERR_CONFIG_INVALID', { path, why: `the token in ${path} is shorter than ${MIN_SECRET_LENGTH} characters; write a longer one there, or delete the file to have one generated` });
    }
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) === 0) return { token, path, created: false };
    chmodSync(path, 0o600);
    const warning = `${path} was readable by group or others (mode 0${mode.toString(8)}); tightened to 0600. Whoever read it holds this credential: rotate it (delete the file and restart) if that may have happened.`;
    return { token, path, created: false, warning };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const token = argSafeRandomText(32);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, token + '\n', { mode: 0o600 });
  renameSync(tmp, path);
  return { token, path, created: true };
}
