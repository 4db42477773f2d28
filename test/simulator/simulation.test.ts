import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '@flotilla/server';
import { parseCliOptions, type SimOptions } from '../../simulator/src/cli-options.js';
import type { RoundProgress } from '../../simulator/src/progress.js';
import type { RoundRow } from '../../simulator/src/results.js';
import { runSimulation } from '../../simulator/src/simulation.js';

/**
 * End-to-end runs of the simulator: an in-process coordinator (or one the test starts, for
 * --url), devices as real SDK clients over socket.io in 2 worker threads, a small MNIST subset.
 */
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'flotilla-sim-'));
  dirs.push(d);
  return d;
}

function opts(args: string[]): SimOptions {
  const o = parseCliOptions(['--train-limit', '1200', '--test-limit', '1000', '--workers', '2', '--quiet', ...args]);
  if (o === 'help') throw new Error('help');
  return o;
}

function collect(): { progress: RoundProgress; lines: string[] } {
  const lines: string[] = [];
  return { lines, progress: { round: (r) => lines.push(`round ${r.round}`), log: (l) => lines.push(l), stop() {} } };
}

describe('simulator end to end', () => {
  it('runs 3 FedAvg rounds with 6 devices in 2 workers and writes the result files', async () => {
    const out = join(await tmp(), 'run');
    const { progress, lines } = collect();
    const r = await runSimulation(opts(['--clients', '6', '--clients-per-round', '3', '--rounds', '3', '--out', out]), { progress });

    expect(r.workers).toBe(2);
    expect(['wasm', 'cpu', 'tensorflow']).toContain(r.backend);
    const rounds = r.results.rounds;
    expect(rounds.map((x) => x.round)).toEqual([1, 2, 3]);
    expect(rounds.every((x) => !x.failed && x.participants === 3)).toBe(true);
    for (const x of rounds) {
      expect(x.accuracy).toBeGreaterThan(0.2); // far above chance (0.1) after one round on 600 rows
      expect(x.bytesUp).toBeGreaterThan(3 * 4 * 199_000);
      expect(x.bytesDown).toBeGreaterThan(0);
    }
    expect(rounds[2].accuracy!).toBeGreaterThan(rounds[0].accuracy! - 0.05);
    expect(r.results.summary).toMatchObject({ roundsCommitted: 3, roundsFailed: 0, stopReason: 'round cap 3 reached' });
    // A device counts a fit when its report's ack reaches it; the run may end (round cap) before
    // the last round's acks arrive in the workers, so the last round's fits may be missing.
    expect(r.pool.fits).toBeGreaterThanOrEqual(6);
    expect(lines).toEqual(['round 1', 'round 2', 'round 3']);

    const json = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    expect(json.config).toMatchObject({ clients: 6, clientsPerRound: 3, mode: 'in-process', preset: 'mnist-mlp', workers: 2 });
    expect(json.config.token).toBeUndefined();
    expect(json.rounds).toEqual(rounds);
    expect((await readFile(join(out, 'results.csv'), 'utf8')).trim().split('\n')).toHaveLength(4);
    expect(existsSync(join(out, 'accuracy.svg'))).toBe(true);
  });

  it('survives dropouts and stragglers: devices vanish mid-round, come back, and rounds still commit', async () => {
    const rows: RoundRow[] = [];
    const r = await runSimulation(
      opts(['--clients', '8', '--clients-per-round', '3', '--rounds', '4', '--dropout', '0.4', '--straggler', '0.3:300', '--deadline-ms', '8000', '--seed', '3']),
      { progress: collect().progress, noFiles: true, onRound: (row) => rows.push(row) },
    );
    expect(rows).toHaveLength(4);
    expect(r.pool.dropouts).toBeGreaterThan(0);
    expect(r.pool.stragglers).toBeGreaterThan(0);
    expect(rows.filter((x) => !x.failed).length).toBeGreaterThanOrEqual(2);
  });

  it('attaches to a running coordinator with --url and evaluates each committed version itself', async () => {
    const app = await buildApp({ logger: false, deviceToken: 'dev-token', adminToken: 'admin-token' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const r = await runSimulation(
        opts(['--url', url, '--token', 'dev-token', '--admin-token', 'admin-token', '--task', 'remote-sim', '--clients', '4', '--clients-per-round', '2', '--rounds', '2']),
        { progress: collect().progress, noFiles: true },
      );
      expect(r.results.rounds.map((x) => x.round)).toEqual([1, 2]);
      for (const x of r.results.rounds) expect(x.accuracy).toBeGreaterThan(0.2);
      expect(r.results.config).toMatchObject({ mode: 'remote' });
      expect(['done', 'stopped']).toContain(app.flotilla.coordinator.getRunner('remote-sim').record.state);
    } finally {
      await app.close();
    }
  });
});
