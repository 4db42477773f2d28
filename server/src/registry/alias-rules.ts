import { AppError } from '@flotilla/protocol';
import type { AliasHistoryRecord } from '../store/records.js';

/** Alias names: lower-case, start with a letter, at most 63 characters. */
export const ALIAS_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
/** Moved by every commit and publish; never set, moved, deleted or rolled back through the API. */
export const SYSTEM_ALIAS = 'latest';

/** Throws FL_ERR_ALIAS_INVALID unless `alias` is a well-formed name that users may change. */
export function assertUserAlias(alias: string): void {
  if (!ALIAS_NAME.test(alias)) throw new AppError('FL_ERR_ALIAS_INVALID', { alias, rule: ALIAS_NAME.source });
  if (alias === SYSTEM_ALIAS) throw new AppError('FL_ERR_ALIAS_INVALID', { alias, why: `'${SYSTEM_ALIAS}' is managed by the system` });
}

/**
 * The version a rollback moves the alias to, from its history (newest first), or null when there
 * is none. History is a stack: each rollback undoes the newest change not yet undone, so two
 * rollbacks after moves 1 -> 2 -> 3 go to 2 and then to 1 (not back to 3). Undoing a delete
 * restores the alias. No-op moves (from === to) are skipped.
 */
export function rollbackTarget(history: readonly AliasHistoryRecord[]): number | null {
  let pending = 0;
  for (const h of history) {
    if (h.from === h.to) continue;
    if (h.action === 'rollback') {
      pending++;
      continue;
    }
    if (pending > 0) {
      pending--;
      continue;
    }
    return h.from;
  }
  return null;
}
