import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeviceStateStore } from './device-state-store.js';

/**
 * Device state as one file per key in a directory (Node only; the browser entry does not export
 * it). A write goes to a temporary file that is then renamed over the old one, so a crash leaves
 * either the old or the new value, never a torn one. Keys are percent-encoded into file names.
 */
export class FileStateStore implements DeviceStateStore {
  private seq = 0;
  constructor(readonly dir: string) {}

  private path(key: string): string {
    return join(this.dir, `${encodeURIComponent(key).replace(/\./g, '%2E')}.bin`);
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(this.path(key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const target = this.path(key);
    const tmp = `${target}.${process.pid}.${this.seq++}.tmp`;
    await writeFile(tmp, value);
    await rename(tmp, target);
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
