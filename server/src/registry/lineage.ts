import type { VersionRecord } from '../store/records.js';
import type { Registry } from './registry.js';

export interface LineageEntry {
  model: string;
  version: number;
  taskId?: string;
  round?: number;
  tags: string[];
  createdAt: number;
}

/**
 * A version and its ancestors, newest first: each step follows `parentVersion` in `parentModel`
 * (the same model when absent), so a fine-tune shows the registry version it started from and
 * that version's own history. Stops at a root, a missing parent, or `max` entries.
 */
export async function lineageOf(registry: Registry, record: VersionRecord, max = 1000): Promise<LineageEntry[]> {
  const out: LineageEntry[] = [];
  let cur: VersionRecord | null = record;
  while (cur && out.length < max) {
    const e: LineageEntry = { model: cur.model, version: cur.version, tags: cur.tags, createdAt: cur.createdAt };
    if (cur.taskId !== undefined) e.taskId = cur.taskId;
    if (cur.round !== undefined) e.round = cur.round;
    out.push(e);
    if (cur.parentVersion === undefined) break;
    cur = await registry.store.getVersion(cur.parentModel ?? cur.model, cur.parentVersion);
  }
  return out;
}
