/**
 * Benchmark: `flotilla serve` start-up, compiled JavaScript against the tsx path, in one run.
 *
 *   node --import ./scripts/dev-loader.mjs bench/startup.ts [--runs 7]
 *
 * Each run spawns a fresh process on port 0 with an empty data dir and times spawn -> first
 * `GET /readyz` answering 200 (polled every 5 ms once the process printed its address):
 *  - compiled: `node server/bin/flotilla.mjs serve` (imports server/dist/main.js; what the
 *    published bin and the Docker image run);
 *  - tsx: `node scripts/dev/flotilla.mjs serve` (tsx transforms the TypeScript sources at load,
 *    from its on-disk cache after the first run; how the bin ran before the build existed).
 * The two alternate, so machine load hits both alike. Prints medians (min-max) and the ratio
 * tsx / compiled. Needs `npm run build` first (npm install runs it).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const RUNS = Number(values.runs);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ENTRIES = { compiled: join(ROOT, 'server/bin/flotilla.mjs'), tsx: join(ROOT, 'scripts/dev/flotilla.mjs') };
if (!existsSync(join(ROOT, 'server/dist/main.js'))) throw new Error('server/dist/main.js is missing: run `npm run build` first');

async function startOnce(entry: string): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-startup-'));
  const t0 = performance.now();
  const proc = spawn(process.execPath, [entry, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn'], {
    env: { ...process.env, NODE_OPTIONS: '', FLOTILLA_ADMIN_TOKEN: 'startup-bench-admin-token-0001', FLOTILLA_DEVICE_TOKEN: 'startup-bench-device-token-001' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      proc.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /flotilla listening (\S+)/.exec(buf);
        if (m) resolve(m[1]);
      });
      proc.once('exit', (code) => reject(new Error(`${entry} exited with ${code}`)));
    });
    for (;;) {
      const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
      if (ok) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const times: Record<keyof typeof ENTRIES, number[]> = { compiled: [], tsx: [] };
await startOnce(ENTRIES.tsx); // fills tsx's transform cache, as any second start finds it
for (let i = 0; i < RUNS; i++) {
  for (const k of (i % 2 ? ['tsx', 'compiled'] : ['compiled', 'tsx']) as (keyof typeof ENTRIES)[]) times[k].push(await startOnce(ENTRIES[k]));
}
console.log(`flotilla serve start-up, spawn -> GET /readyz 200, ${RUNS} runs each, alternating`);
for (const [k, xs] of Object.entries(times)) console.log(`  ${k.padEnd(9)} median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`);
console.log(`  ratio tsx / compiled: ${(median(times.tsx) / median(times.compiled)).toFixed(2)}x`);
