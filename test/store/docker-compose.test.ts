import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from './temp-dir.js';

/**
 * docker-compose.yml is validated by Debian's `docker-compose config` (a Docker engine does not
 * run here, but the validator does); the Dockerfile's COPY sources are checked against the tree.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const hasCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
if (!hasCompose) {
  console.warn('[skipped] docker-compose config validation: the docker-compose binary is absent (apt-get install docker-compose provides it).');
}

function composeConfig(file: string, env: Record<string, string> = {}): { status: number | null; out: string } {
  const r = spawnSync('docker-compose', ['-f', file, 'config'], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!hasCompose)('docker-compose.yml (docker-compose config)', () => {
  it('is valid and wires MongoDB (replica set) and the coordinator through env and volumes', () => {
    const { status, out } = composeConfig('docker-compose.yml', { FLOTILLA_ADMIN_TOKEN: 'admin-token-from-env-123' });
    expect(status, out).toBe(0);
    expect(out).toMatch(/mongo:\n/);
    expect(out).toMatch(/--replSet/);
    expect(out).toContain('FLOTILLA_MONGODB_URL: mongodb://mongo:27017/flotilla?replicaSet=rs0');
    expect(out).toContain('FLOTILLA_ADMIN_TOKEN: admin-token-from-env-123');
    expect(out).toContain('condition: service_healthy');
    expect(out).toContain('mongo-data:/data/db');
    expect(out).toContain('flotilla-data:/data');
    const services = execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '--services'], { cwd: ROOT, encoding: 'utf8' });
    // docker-compose 1.29 lists every service here; the cluster ones only start with --profile cluster
    expect(services.trim().split('\n').sort()).toEqual(['coordinator', 'coordinator-1', 'coordinator-2', 'coordinator-3', 'lb', 'mongo', 'redis']);
  });

  it('has a cluster profile: Redis, three coordinators on MongoDB + Redis, and an nginx load balancer', () => {
    const { status, out } = composeConfig('docker-compose.yml', { COMPOSE_PROFILES: 'cluster', FLOTILLA_ADMIN_TOKEN: 'admin-token-from-env-123' });
    expect(status, out).toBe(0);
    for (const i of [1, 2, 3]) {
      expect(out).toContain(`coordinator-${i}:`);
      expect(out).toContain(`FLOTILLA_CLUSTER_NODE_ID: coordinator-${i}`);
    }
    expect(out.match(/FLOTILLA_CLUSTER_REDIS_URL: redis:\/\/redis:6379/g)).toHaveLength(3);
    expect(out.match(/profiles:\n\s+- cluster/g)?.length).toBe(5);
    expect(out).toMatch(/image: redis:/);
    expect(out).toMatch(/image: nginx:/);
    const nginx = readFileSync(join(ROOT, 'deploy/cluster/nginx.conf'), 'utf8');
    for (const i of [1, 2, 3]) expect(nginx).toContain(`server coordinator-${i}:8080`);
    expect(nginx).toMatch(/proxy_set_header Upgrade \$http_upgrade/); // websockets through the balancer
    expect(nginx).toMatch(/ip_hash/); // sticky sessions for the polling transport
  });

  it('the validator rejects a broken file (so the check above means something)', async () => {
    const t = await tempDir();
    const bad = join(t.dir, 'bad.yml');
    await writeFile(bad, 'services:\n  x:\n    image: 5\n    ports: "not-a-list"\n    depends_on: { y: { condition: nonsense } }\n');
    expect(composeConfig(bad).status).not.toBe(0);
    await t.remove();
  });
});

describe('Dockerfile', () => {
  it('copies only paths that exist and starts `flotilla serve` with /data as its volume', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const copies = [...text.matchAll(/^COPY (?!--from)(.+)$/gm)].map((m) => m[1].trim().split(/\s+/).slice(0, -1)).flat();
    expect(copies.length).toBeGreaterThan(3);
    for (const src of copies) expect(existsSync(join(ROOT, src)), src).toBe(true);
    expect(text).toContain('ENTRYPOINT ["node", "server/bin/flotilla.mjs"]');
    expect(text).toContain('FLOTILLA_DATA_DIR=/data');
    expect(existsSync(join(ROOT, 'server/bin/flotilla.mjs'))).toBe(true);
    expect(readFileSync(join(ROOT, '.dockerignore'), 'utf8')).toContain('**/node_modules');
  });

  it('runs node on the compiled JavaScript: the build makes the entrypoint\'s import, and no tsx is left to run', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    // The entrypoint imports the compiled CLI, which the server's build config emits from src/main.ts.
    expect(readFileSync(join(ROOT, 'server/bin/flotilla.mjs'), 'utf8')).toMatch(/^import '\.\.\/dist\/main\.js';$/m);
    const build = JSON.parse(readFileSync(join(ROOT, 'server/tsconfig.build.json'), 'utf8'));
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(existsSync(join(ROOT, 'server/src/main.ts'))).toBe(true);
    // Built in the image, then development dependencies (tsx, typescript) and the sources removed.
    expect(text).toMatch(/RUN npm run build/);
    expect(text).toMatch(/npm prune --omit=dev/);
    expect(text).toMatch(/rm -rf [^\n]*server\/src/);
    expect(text).not.toMatch(/^(ENTRYPOINT|CMD).*tsx/m);
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(Object.keys(root.dependencies ?? {})).not.toContain('tsx');
    expect(Object.keys(root.devDependencies)).toContain('tsx');
    for (const w of ['protocol', 'model', 'client-sdk', 'server', 'simulator']) {
      const pkg = JSON.parse(readFileSync(join(ROOT, w, 'package.json'), 'utf8'));
      expect(Object.keys(pkg.dependencies ?? {}), w).not.toContain('tsx');
    }
  });
});
