import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A token kept in `<dir>/<name>` (mode 0600): read if present, else generated and written
 * atomically (temp file + rename). Returns the token and whether it was just created.
 */
export function loadOrCreateSecret(dir: string, name: string): { token: string; path: string; created: boolean } {
  const path = join(dir, name);
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) return { token, path, created: false };
  } catch {
    // absent: create below
  }
  mkdirSync(dir, { recursive: true });
  const token = randomBytes(32).toString('base64url');
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, token + '\n', { mode: 0o600 });
  renameSync(tmp, path);
  return { token, path, created: true };
}
