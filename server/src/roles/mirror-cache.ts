import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../store/memory-blob-store.js';
import type { VersionRecord } from '../store/records.js';

/** What a mirror last synced: versions (with their artifacts on disk) and where its aliases pointed. */
export interface MirrorState {
  savedAt: number;
  versions: VersionRecord[];
  aliases: Array<{ model: string; alias: string; version: number }>;
}

/** Write `bytes` to `path` so that a reader sees the old file or the whole new one, never a part (temp file, fsync, rename). */
async function writeAtomic(dir: string, path: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * A sidecar's (or replica's) last synced versions on local disk, so that a restart while the
 * registry is unreachable still serves them. Layout: `<dir>/blobs/<sha256>` and `<dir>/state.json`.
 * Contracts:
 *  - `save` writes every blob before the state that names it, each atomically: a crash at any
 *    point leaves the previous state or the new one, both whole;
 *  - `load` returns null when there is no state; it verifies every blob's sha256 and returns
 *    only versions whose artifacts are all intact (a damaged one is left out, not served);
 *  - blobs no saved state names are removed after a save.
 */
export class MirrorCache {
  private readonly blobsDir: string;

  constructor(readonly dir: string) {
    this.blobsDir = join(dir, 'blobs');
    mkdirSync(this.blobsDir, { recursive: true, mode: 0o700 });
  }

  async save(state: MirrorState, artifact: (sha256: string) => Promise<Uint8Array>): Promise<void> {
    const keep = new Set<string>();
    const present = new Set(await readdir(this.blobsDir));
    for (const v of state.versions) {
      for (const a of v.artifacts) {
        keep.add(a.sha256);
        if (!present.has(a.sha256)) await writeAtomic(this.blobsDir, join(this.blobsDir, a.sha256), await artifact(a.sha256));
      }
    }
    await writeAtomic(this.dir, join(this.dir, 'state.json'), Buffer.from(JSON.stringify(state)));
    for (const f of present) if (!keep.has(f)) await rm(join(this.blobsDir, f), { force: true });
  }

  async load(): Promise<{ state: MirrorState; blobs: Map<string, Uint8Array>; damaged: string[] } | null> {
    let state: MirrorState;
    try {
      state = JSON.parse(await readFile(join(this.dir, 'state.json'), 'utf8')) as MirrorState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      return { state: { savedAt: 0, versions: [], aliases: [] }, blobs: new Map(), damaged: ['state.json'] };
    }
    const blobs = new Map<string, Uint8Array>();
    const damaged: string[] = [];
    const versions: VersionRecord[] = [];
    for (const v of state.versions ?? []) {
      let whole = true;
      for (const a of v.artifacts) {
        if (blobs.has(a.sha256)) continue;
        const bytes = await readFile(join(this.blobsDir, a.sha256)).catch(() => null);
        if (bytes && bytes.length === a.size && sha256Hex(bytes) === a.sha256) blobs.set(a.sha256, new Uint8Array(bytes));
        else {
          whole = false;
          damaged.push(`${v.model}@${v.version}/${a.name}`);
        }
      }
      if (whole) versions.push(v);
    }
    const kept = new Set(versions.map((v) => `${v.model}\u0000${v.version}`));
    return { state: { ...state, versions, aliases: (state.aliases ?? []).filter((a) => kept.has(`${a.model}\u0000${a.version}`)) }, blobs, damaged };
  }
}
