import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { packAndInstall, ROOT, type PackedProject } from './packed-project.js';

/**
 * What we publish works, not what we run in the monorepo: the packages are packed, installed from
 * their tarballs into an empty project outside the repository, and from there (a) the packed
 * server's `flotilla` bin coordinates rounds for the plain-JavaScript example device
 * (examples/node-device/device.mjs, importing '@flotilla/client'), and (b) the packed client
 * bundles for the browser with nothing from Node.
 */
const ADMIN = 'pack-test-admin-token-000000001';
const DEVICE = 'pack-test-device-token-00000001';

let project: PackedProject;
let server: ChildProcess | null = null;
let url = '';

function lines(proc: ChildProcess): { text: () => string; waitFor: (re: RegExp) => Promise<RegExpExecArray> } {
  let buf = '';
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  const onData = (d: Buffer) => {
    buf += d.toString();
    for (const w of [...waiters]) {
      const m = w.re.exec(buf);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  return {
    text: () => buf,
    waitFor: (re) =>
      new Promise((resolve, reject) => {
        const m = re.exec(buf);
        if (m) return resolve(m);
        waiters.push({ re, resolve });
        proc.once('exit', (code) => setTimeout(() => reject(new Error(`exited (${code}) before ${re}:\n${buf}`)), 50));
      }),
  };
}

async function api(url: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

describe('packed packages in an empty project', () => {
  beforeAll(() => {
    project = packAndInstall();
  }, 600_000);

  afterAll(() => {
    // The server runs in its own process group: kill the group, so no child outlives the test.
    if (server?.pid && server.exitCode === null) process.kill(-server.pid, 'SIGKILL');
    if (project) rmSync(join(project.dir, '..'), { recursive: true, force: true });
  });

  it('ships compiled JavaScript with types and bins on dist/, and no TypeScript tooling', () => {
    const mods = join(project.dir, 'node_modules');
    for (const name of ['protocol', 'model', 'client', 'server', 'simulator']) {
      const pkg = JSON.parse(readFileSync(join(mods, '@flotilla', name, 'package.json'), 'utf8'));
      expect(existsSync(join(mods, '@flotilla', name, pkg.types)), `${name} types`).toBe(true);
      expect(existsSync(join(mods, '@flotilla', name, 'src')), `${name} ships no sources`).toBe(false);
    }
    // The bins are two-line files importing the compiled CLIs.
    expect(realpathSync(join(mods, '.bin/flotilla'))).toBe(join(mods, '@flotilla/server/bin/flotilla.mjs'));
    expect(readFileSync(join(mods, '@flotilla/server/bin/flotilla.mjs'), 'utf8')).toContain("import '../dist/main.js';");
    expect(realpathSync(join(mods, '.bin/flotilla-sim'))).toBe(join(mods, '@flotilla/simulator/bin/flotilla-sim.mjs'));
    expect(readFileSync(join(mods, '@flotilla/simulator/bin/flotilla-sim.mjs'), 'utf8')).toContain("import '../dist/bin.js';");
    expect(existsSync(join(mods, '@flotilla/server/dist/main.js'))).toBe(true);
    expect(existsSync(join(mods, '@flotilla/simulator/dist/bin.js'))).toBe(true);
    // Nothing could load TypeScript at run time: no tsx, no typescript in the installed tree.
    expect(existsSync(join(mods, 'tsx'))).toBe(false);
    expect(existsSync(join(mods, 'typescript'))).toBe(false);
  });

  it('runs the example device (plain .mjs) against the packed flotilla bin: two rounds commit with its reports', async () => {
    const dataDir = mkdtempSync(join(project.dir, 'data-'));
    server = spawn(join(project.dir, 'node_modules/.bin/flotilla'), ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn'], {
      cwd: project.dir,
      env: { ...process.env, FLOTILLA_ADMIN_TOKEN: ADMIN, FLOTILLA_DEVICE_TOKEN: DEVICE, NODE_OPTIONS: '' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = (await lines(server).waitFor(/flotilla listening (\S+)/))[1];
    await api(url, 'POST', '/api/v1/tasks', {
      id: 'tiny',
      preset: 'tiny-mlp',
      plan: { clientsPerRound: 2, overSelect: 1, minReports: 2, maxRounds: 3, epochs: 1, batchSize: 16, learningRate: 0.2, roundDeadlineMs: 120_000 },
      start: true,
    });
    copyFileSync(join(ROOT, 'examples/node-device/device.mjs'), join(project.dir, 'device.mjs'));
    const devices = [1, 2].map((seed) =>
      spawn(process.execPath, ['device.mjs'], {
        cwd: project.dir,
        env: { ...process.env, NODE_OPTIONS: '', FLOTILLA_URL: url, FLOTILLA_TOKEN: DEVICE, FLOTILLA_TASK: 'tiny', FLOTILLA_ROUNDS: '2', FLOTILLA_SEED: String(seed) },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const outputs = devices.map(lines);
    const codes = await Promise.all(devices.map((d) => new Promise<number | null>((r) => d.once('exit', r))));
    expect(codes, outputs.map((o) => o.text()).join('\n---\n')).toEqual([0, 0]);
    for (const o of outputs) expect(o.text().match(/^fit round=\d+ examples=200 /gm)).toHaveLength(2);
    const { rounds } = await api(url, 'GET', '/api/v1/tasks/tiny/rounds');
    // Each device leaves after its second accepted report, so rounds 1 and 2 committed with both.
    expect(rounds.filter((r: any) => r.round <= 2 && r.state === 'done')).toHaveLength(2);
    for (const round of [1, 2]) {
      const detail = await api(url, 'GET', `/api/v1/tasks/tiny/rounds/${round}`);
      expect(detail.reported).toHaveLength(2);
      expect(detail.committedVersion).toBeGreaterThan(detail.baseVersion);
      expect(detail.trainMetrics.examples).toBe(400);
    }
  }, 300_000);

  it('runs the packed flotilla-sim against that coordinator: compiled worker threads train MNIST devices', async () => {
    expect(url, 'the coordinator of the previous test').not.toBe('');
    const sim = spawn(
      join(project.dir, 'node_modules/.bin/flotilla-sim'),
      ['--url', url, '--token', DEVICE, '--admin-token', ADMIN, '--task', 'sim', '--clients', '4', '--clients-per-round', '2', '--rounds', '1', '--train-limit', '400', '--test-limit', '200', '--workers', '2', '--out', join(project.dir, 'sim-out'), '--quiet'],
      { cwd: project.dir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out = lines(sim);
    const code = await new Promise<number | null>((r) => sim.once('exit', r));
    expect(code, out.text()).toBe(0);
    expect(existsSync(join(project.dir, 'sim-out/results.json'))).toBe(true);
    const { rounds } = await api(url, 'GET', '/api/v1/tasks/sim/rounds');
    expect(rounds.filter((r: any) => r.state === 'done')).toHaveLength(1);
  }, 300_000);

  it('types: a TypeScript app type-checks against the packed .d.ts files', () => {
    // The @ts-expect-error line fails the check if the declarations were missing (everything `any`).
    writeFileSync(
      join(project.dir, 'consumer.mts'),
      [
        "import { FlotillaClient, type FitEvent, type DataProvider } from '@flotilla/client';",
        "import { buildApp, type FlotillaApp } from '@flotilla/server';",
        "import { PROTOCOL_VERSION, getCodec } from '@flotilla/protocol';",
        "const data: DataProvider = { train: () => ({ x: new Float32Array(8), y: new Uint8Array(1), inputSize: 8, numClasses: 3 }) };",
        "const c = new FlotillaClient({ url: 'http://127.0.0.1:1', token: 't', taskId: 'a', data });",
        'c.on(\'fit\', (e: FitEvent) => console.log(e.round + 1));',
        'const app: Promise<FlotillaApp> = buildApp({});',
        "const n: number = PROTOCOL_VERSION + getCodec('f32').encode(new Float32Array(2)).byteLength;",
        '// @ts-expect-error: a string is not a number',
        'const wrong: string = PROTOCOL_VERSION;',
        'export { app, n, wrong };',
      ].join('\n'),
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules/@types'), 'consumer.mts'];
    const r = spawnSync(process.execPath, [tsc, ...args], { cwd: project.dir, encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  }, 180_000);

  it('bundles the packed client for the browser with no Node built-ins', async () => {
    const entry = join(project.dir, 'browser-app.mjs');
    writeFileSync(entry, "import { FlotillaClient, protocol } from '@flotilla/client';\nglobalThis.flotilla = { FlotillaClient, version: protocol.PROTOCOL_VERSION };\n");
    const result = await build({ entryPoints: [entry], absWorkingDir: project.dir, bundle: true, platform: 'browser', format: 'esm', minify: true, write: false, metafile: true, logLevel: 'silent' });
    expect(result.errors).toEqual([]);
    // '(disabled):x' inputs are modules that a package's `browser` field maps to false (tfjs maps
    // fs, path, crypto, worker_threads... so): esbuild bundles an empty object in their place.
    const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith('(disabled):'));
    expect(inputs).toContain('node_modules/@flotilla/client/dist/browser.js');
    expect(inputs.filter((p) => !p.startsWith('node_modules/') && p !== 'browser-app.mjs')).toEqual([]);
    expect(inputs.filter((p) => /^node:|node_modules\/(ws|bufferutil|utf-8-validate|better-sqlite3|@tensorflow\/tfjs-node)\//.test(p))).toEqual([]);
    const imports = Object.values(result.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
    expect(imports.filter((p) => p.startsWith('node:') || /^(fs|path|os|crypto|worker_threads|child_process|net|tls|http|https|zlib|stream)$/.test(p))).toEqual([]);
  }, 120_000);
});
