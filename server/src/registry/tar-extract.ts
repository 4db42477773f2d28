import { open, type FileHandle } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { AppError } from '../errors.js';

/** One regular file of an extracted archive: where it was written and its size. */
export interface ExtractedFile {
  path: string;
  size: number;
}

export interface ExtractOptions {
  /** Bytes of archive accepted in all; past it FL_ERR_UPLOAD_TOO_LARGE. */
  limitBytes: number;
  maxFiles?: number;
}

const BLOCK = 512;

function malformed(why: string): AppError {
  return new AppError('FL_ERR_UPLOAD_MALFORMED', { why });
}

function cstr(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? s.length : z).toString('utf8');
}

function octal(b: Buffer, start: number, len: number): number {
  if (b[start] & 0x80) {
    // GNU base-256 size for files of 8 GiB and more: far past any upload limit.
    throw malformed('file too large for an upload');
  }
  const s = cstr(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw malformed(`bad octal field "${s.slice(0, 20)}"`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === octal(h, 148, 8);
}

/** `./a/b` -> `a/b`; refuses absolute names and `..` (names are only keys: files are written under generated names). */
function normalise(name: string): string {
  const n = posix.normalize(name.replace(/^(\.\/)+/, ''));
  if (n.startsWith('/') || n === '..' || n.startsWith('../')) throw malformed(`unsafe path ${name.slice(0, 100)}`);
  return n;
}

/**
 * Streams a POSIX (ustar, pax or GNU) tar archive into `dir`, one file per regular member, holding
 * O(chunk) in memory. Members are keyed by their normalised path; directories are skipped, other
 * member types (links, devices) are refused. Counts every byte against `limitBytes`. Throws
 * FL_ERR_UPLOAD_MALFORMED or FL_ERR_UPLOAD_TOO_LARGE; the caller removes `dir` either way.
 */
export async function extractTar(source: AsyncIterable<Uint8Array>, dir: string, opts: ExtractOptions): Promise<Map<string, ExtractedFile>> {
  const files = new Map<string, ExtractedFile>();
  const maxFiles = opts.maxFiles ?? 10_000;
  let pending: Buffer = Buffer.alloc(0);
  let total = 0;
  // Member being read: remaining data bytes, padding after it, and where it goes.
  let remaining = 0;
  let padding = 0;
  let out: FileHandle | null = null;
  let kind = 'skip' as 'file' | 'pax' | 'longname' | 'skip';
  let meta: Buffer[] = [];
  let nextName: string | null = null;
  let ended = false;

  const header = async (h: Buffer): Promise<void> => {
    if (h.every((x) => x === 0)) {
      ended = true;
      return;
    }
    if (!checksumOk(h)) throw malformed('header checksum mismatch (not a tar archive, or a damaged one)');
    const type = String.fromCharCode(h[156] || 48);
    const size = octal(h, 124, 12);
    const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(h, 345, 155) : '';
    const name = nextName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    nextName = null;
    remaining = size;
    padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === '0' || type === '7') {
      if (files.size >= maxFiles) throw malformed(`more than ${maxFiles} files`);
      const key = normalise(name);
      const path = join(dir, `f${files.size}`);
      out = await open(path, 'wx');
      files.set(key, { path, size });
      kind = 'file';
    } else if (type === 'x' || type === 'L') {
      if (size > 1 << 20) throw malformed('extended header too large');
      kind = type === 'x' ? 'pax' : 'longname';
      meta = [];
    } else if (type === '5' || type === 'g') {
      kind = 'skip';
    } else {
      throw malformed(`member "${name.slice(0, 100)}" has type ${type}; only regular files and directories are accepted`);
    }
    if (remaining === 0) await endMember();
  };

  const endMember = async (): Promise<void> => {
    if (kind === 'file' && out) {
      await out.close();
      out = null;
    } else if (kind === 'pax') {
      const text = Buffer.concat(meta).toString('utf8');
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text);
      if (m) nextName = m[1];
    } else if (kind === 'longname') {
      nextName = cstr(Buffer.concat(meta), 0, Number.MAX_SAFE_INTEGER);
    }
    kind = 'skip';
  };

  try {
    for await (const chunk of source) {
      total += chunk.byteLength;
      if (total > opts.limitBytes) throw new AppError('FL_ERR_UPLOAD_TOO_LARGE', { limit: opts.limitBytes });
      if (ended) continue;
      pending = pending.length ? Buffer.concat([pending, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      while (!ended) {
        if (remaining > 0) {
          if (pending.length === 0) break;
          const take = pending.subarray(0, Math.min(remaining, pending.length));
          if (kind === 'file') await out!.write(take);
          else if (kind !== 'skip') meta.push(Buffer.from(take));
          remaining -= take.length;
          pending = pending.subarray(take.length);
          if (remaining === 0) await endMember();
        } else if (padding > 0) {
          const skip = Math.min(padding, pending.length);
          if (skip === 0) break;
          padding -= skip;
          pending = pending.subarray(skip);
        } else {
          if (pending.length < BLOCK) break;
          const h = Buffer.from(pending.subarray(0, BLOCK));
          pending = pending.subarray(BLOCK);
          await header(h);
        }
      }
      if (pending.length) pending = Buffer.from(pending); // do not pin the whole chunk
    }
  } finally {
    await (out as FileHandle | null)?.close();
  }
  if (!ended && (remaining > 0 || padding > 0 || pending.length > 0 || files.size === 0)) throw malformed('the archive ends inside a member (truncated)');
  return files;
}
