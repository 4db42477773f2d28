import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/**
 * The upload format of a model directory: a POSIX tar (ustar, with a pax header for names over
 * 100 bytes) of every regular file under `dir`, streamed file by file. Read back by
 * tar-extract.ts. `size` is the archive's exact length (for Content-Length).
 */
export interface DirectoryArchive {
  size: number;
  files: Array<{ name: string; size: number }>;
  chunks(): AsyncIterable<Uint8Array>;
}

const BLOCK = 512;
const pad = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

function header(name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** Header blocks for one member (a pax record first when the name does not fit in 100 bytes). */
function memberHeader(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) <= 100) return header(name, size, '0');
  let rec = ` path=${name}\n`;
  let len = rec.length + 1;
  while (`${len}${rec}`.length !== len) len = `${len}${rec}`.length;
  const body = Buffer.from(`${len}${rec}`);
  return Buffer.concat([header('PaxHeader', body.length, 'x'), body, Buffer.alloc(pad(body.length)), header(name.slice(-100), size, '0')]);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

export async function archiveDirectory(dir: string): Promise<DirectoryArchive> {
  const paths = await listFiles(dir);
  const files = await Promise.all(paths.map(async (p) => ({ path: p, name: relative(dir, p).split(sep).join('/'), size: (await stat(p)).size })));
  const size = files.reduce((a, f) => a + memberHeader(f.name, f.size).length + f.size + pad(f.size), 2 * BLOCK);
  return {
    size,
    files: files.map(({ name, size: s }) => ({ name, size: s })),
    async *chunks() {
      for (const f of files) {
        yield memberHeader(f.name, f.size);
        let n = 0;
        for await (const c of createReadStream(f.path, { highWaterMark: 1 << 20 })) {
          n += (c as Buffer).length;
          yield c as Buffer;
        }
        if (n !== f.size) throw new Error(`${f.name} changed size while it was being sent`);
        if (pad(f.size)) yield Buffer.alloc(pad(f.size)); // never an empty chunk: a zero-length write stalls a streamed fetch body
      }
      yield Buffer.alloc(2 * BLOCK);
    },
  };
}
