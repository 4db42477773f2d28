import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { admin, startChildServer, type ChildServer } from '../helpers/child-server.js';
import { tempDir } from '../store/temp-dir.js';

/**
 * Issue 11 item 14: `flotilla-sim --url` rides out its coordinator's death. The coordinator runs
 * as `flotilla serve` in its own process group; while a `flotilla-sim --url` child runs rounds
 * against it, the whole group is SIGKILLed, and a new coordinator is started on the same port
 * and data dir. The simulator waits (saying so on stderr), its devices reconnect, and it finishes
 * its rounds and exits 0.
 */
const SIM = fileURLToPath(new URL('../../simulator/bin/flotilla-sim.mjs', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('flotilla-sim --url survives an unreachable coordinator', () => {
  const servers: ChildServer[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let sim: ChildProcess | undefined;
  afterAll(async () => {
    if (sim && sim.exitCode === null && sim.signalCode === null) process.kill(-sim.pid!, 'SIGKILL');
    for (const s of servers) await s.stop('SIGKILL');
    for (const c of cleanups) await c();
  });

  it('waits through a SIGKILL of the coordinator group and a restart on the same port and data dir, then finishes its rounds', { timeout: 400_000 }, async () => {
    const data = await tempDir('flotilla-failover-');
    const outRoot = await tempDir('flotilla-failover-out-');
    cleanups.push(data.remove, outRoot.remove);
    let server = await startChildServer({ dataDir: data.dir, detached: true });
    servers.push(server);
    const port = Number(new URL(server.url).port);
    const out = join(outRoot.dir, 'run');
    const rounds = 4;
    sim = spawn(
      process.execPath,
      [SIM, '--url', server.url, '--token', server.deviceToken, '--admin-token', server.adminToken, '--task', 'failover',
        '--clients', '4', '--clients-per-round', '2', '--rounds', String(rounds), '--deadline-ms', '30000', '--eval-clients', '0',
        '--target-accuracy', '0.99', '--train-limit', '1200', '--test-limit', '300', '--workers', '1', '--quiet', '--out', out],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    sim.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    sim.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => sim!.once('exit', (code) => resolve(code)));

    // Let one round commit, then kill the coordinator's whole process group.
    let committedBeforeKill = 0;
    for (;;) {
      const t = await admin(server, 'GET', '/api/v1/tasks/failover').catch(() => null);
      if (t && t.currentVersion >= 2) {
        committedBeforeKill = t.currentVersion - 1;
        break;
      }
      if (sim.exitCode !== null) throw new Error(`simulator exited early: ${stderr}`);
      await sleep(100);
    }
    await server.stop('SIGKILL');
    // The simulator notices and says it is waiting.
    while (!/unreachable/.test(stderr)) {
      if (sim.exitCode !== null) throw new Error(`simulator exited while the coordinator was down: ${stderr}`);
      await sleep(100);
    }
    server = await startChildServer({ dataDir: data.dir, port, detached: true });
    servers.push(server);

    const code = await exited;
    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    expect(stderr).toMatch(/coordinator http:\/\/127\.0\.0\.1:\d+ unreachable \(.+\); retrying in [\d.]+ s/);
    expect(stderr).toMatch(/coordinator http:\/\/127\.0\.0\.1:\d+ reachable again after/);
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    expect(results.rounds.map((r: { round: number }) => r.round)).toEqual([1, 2, 3, 4]);
    const last = results.rounds[rounds - 1];
    expect(results.summary.stopReason).toBe(`round cap ${rounds} reached`);
    // Rounds committed after the restart: the new coordinator ran them with the reconnected devices.
    expect(results.summary.roundsCommitted).toBeGreaterThan(committedBeforeKill);
    expect(last.failed).toBe(false);
    const task = await admin(server, 'GET', '/api/v1/tasks/failover');
    expect(['done', 'stopped']).toContain(task.state);
  });

  it('gives up after --wait-timeout with a clear message and exit code 1 when the coordinator never answers', async () => {
    // A port nothing listens on: bind one, then close it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const url = `http://127.0.0.1:${port}`;
    const r = spawnSync(process.execPath, [SIM, '--url', url, '--token', 'x', '--wait-timeout', '1', '--clients', '2', '--clients-per-round', '1', '--train-limit', '100', '--test-limit', '50', '--quiet'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`flotilla-sim: coordinator ${url} unreachable (ECONNREFUSED); retrying in`);
    expect(r.stderr).toContain(`flotilla-sim: coordinator ${url} unreachable for 1 s (ECONNREFUSED); giving up`);
  });
});
