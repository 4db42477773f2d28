import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const WORKSPACES = ['protocol', 'model', 'client-sdk', 'server', 'simulator'] as const;

export interface PackedProject {
  /** The temporary app directory (outside the repository) with the tarballs installed. */
  dir: string;
  /** Tarball file names by workspace. */
  tarballs: Record<string, string>;
}

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * What a user of the published packages gets: builds the workspaces (tsc -b, incremental), packs
 * each with `npm pack`, and installs the tarballs into an empty project under the OS temp dir, so
 * nothing can resolve back into the monorepo. Third-party dependencies come from the npm cache
 * (--prefer-offline). Install scripts are off; better-sqlite3 then lacks its native addon, which its
 * own install would fetch prebuilt or compile, so the addon the workspace built (same version, same
 * Node ABI, checked) is placed where that install would put it. Optional dependencies (tfjs-node,
 * which downloads libtensorflow) are omitted, as they are dropped on machines where they fail.
 */
export function packAndInstall(): PackedProject {
  const t0 = Date.now();
  run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'], ROOT);
  const base = mkdtempSync(join(tmpdir(), 'flotilla-pack-'));
  const packs = join(base, 'tarballs');
  mkdirSync(packs);
  const out = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', packs, ...WORKSPACES.flatMap((w) => ['-w', w])], ROOT)) as { name: string; filename: string }[];
  const tarballs: Record<string, string> = {};
  for (const p of out) tarballs[p.name] = p.filename;
  const tPacked = Date.now();
  const dir = join(base, 'app');
  mkdirSync(dir);
  const dependencies = Object.fromEntries(out.map((p) => [p.name, `file:../tarballs/${p.filename}`]));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'flotilla-pack-test', private: true, type: 'module', dependencies }, null, 2));
  run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--omit=optional', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  const sqlite = (root: string) => join(root, 'node_modules/better-sqlite3');
  const version = (root: string) => JSON.parse(readFileSync(join(sqlite(root), 'package.json'), 'utf8')).version as string;
  if (version(dir) !== version(ROOT)) throw new Error(`better-sqlite3 ${version(dir)} in the packed app, ${version(ROOT)} in the workspace: cannot reuse the built addon`);
  const addon = 'build/Release/better_sqlite3.node';
  mkdirSync(join(sqlite(dir), 'build/Release'), { recursive: true });
  if (!existsSync(join(sqlite(dir), addon))) copyFileSync(join(sqlite(ROOT), addon), join(sqlite(dir), addon));
  console.log(`pack test: build + npm pack ${((tPacked - t0) / 1000).toFixed(1)} s, npm install of the tarballs ${((Date.now() - tPacked) / 1000).toFixed(1)} s`);
  return { dir, tarballs };
}
