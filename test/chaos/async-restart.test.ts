import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { openStorage } from '../../server/src/store/open-storage.js';
import { admin, startChildServer, type ChildServer } from '../helpers/child-server.js';
import { synthetic } from '../helpers/synthetic.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An async task (docs/async.md, "Versions and resume") survives a SIGKILL of its coordinator: the
 * child process is killed while model steps after the last published version exist, restarted on
 * the same data dir and port, and the SDK devices reconnect and keep training. Afterwards versions
 * are contiguous and parented with verifying artifacts, no version is committed twice, the steps
 * that were not published at the kill are marked lost (failed) and their numbers are not reused,
 * and the task keeps publishing with its FedAvgM momentum in the store.
 */
describe('async task across a coordinator SIGKILL', () => {
  const clients: FlotillaClient[] = [];
  const servers: ChildServer[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-async-kill-'));
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    for (const s of servers) await s.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('resumes from the last published version, marks the unpublished steps lost and keeps publishing', async () => {
    let server = await startChildServer({ dataDir: dir, detached: true });
    servers.push(server);
    const port = Number(new URL(server.url).port);
    await admin(server, 'POST', '/api/v1/tasks', {
      id: 'ak',
      preset: 'tiny-mlp',
      plan: { mode: 'async', concurrency: 3, bufferSize: 2, publishEvery: 3, maxRounds: 100_000, epochs: 1, batchSize: 16, learningRate: 0.3, roundDeadlineMs: 10_000, seed: 7, strategy: { name: 'fedavgm', params: { serverMomentum: 0.5 } } },
      start: true,
    });
    const trainer = new LocalTrainer();
    for (let i = 0; i < 4; i++) {
      const data = synthetic(120, 300 + i);
      const c = new FlotillaClient({ url: server.url, token: server.deviceToken, taskId: 'ak', data: { train: () => data }, trainer, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
      c.on('error', () => {});
      clients.push(c);
    }
    await Promise.all(clients.map((c) => c.start()));
    // Kill once version 3 exists and the newest step is not published yet (steps would be lost).
    for (;;) {
      const t = await admin(server, 'GET', '/api/v1/tasks/ak');
      const newest = (await admin(server, 'GET', '/api/v1/tasks/ak/rounds?limit=1')).rounds[0];
      if (t.currentVersion >= 3 && newest && newest.committedVersion === null) break;
      await sleep(20);
    }
    await server.stop('SIGKILL');
    let s = await openStorage({ dataDir: dir });
    const atKill = (await s.store.getTask('ak'))!;
    const unpublished = (await s.store.listRounds('ak', { limit: 100 })).filter((r) => r.round > 0 && r.state === 'done' && r.committedVersion === undefined);
    const lastCommittedStep = (await s.store.listRounds('ak', { limit: 100 })).find((r) => r.committedVersion !== undefined)?.round ?? 0;
    const lost = unpublished.filter((r) => r.round > lastCommittedStep).map((r) => r.round);
    await s.close();
    console.log(`killed at version ${atKill.currentVersion}; unpublished steps lost: ${lost.join(', ') || 'none'}`);

    server = await startChildServer({ dataDir: dir, port, detached: true });
    servers.push(server);
    for (;;) {
      const t = await admin(server, 'GET', '/api/v1/tasks/ak').catch(() => null);
      if (t && t.currentVersion >= atKill.currentVersion + 2) break;
      await sleep(50);
    }
    await Promise.all(clients.map((c) => c.stop()));
    await server.stop('SIGKILL');

    s = await openStorage({ dataDir: dir });
    try {
      const versions = (await s.store.listVersions('ak', { includeArchived: true })).reverse();
      expect(versions.map((v) => v.version)).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
      for (const v of versions) {
        if (v.version > 1) expect(v.parentVersion).toBe(v.version - 1);
        for (const a of v.artifacts) expect(await s.blobs.get(a.sha256)).not.toBeNull();
      }
      const steps = await s.store.listRounds('ak', { limit: 1000 });
      const committed = steps.filter((r) => r.committedVersion !== undefined);
      expect(new Set(committed.map((r) => r.committedVersion)).size).toBe(committed.length);
      // Versions grow with step numbers.
      const byStep = committed.sort((a, b) => a.round - b.round).map((r) => r.committedVersion!);
      expect(byStep).toEqual([...byStep].sort((a, b) => a - b));
      for (const n of lost) {
        const r = steps.find((x) => x.round === n)!;
        expect(r.state).toBe('failed');
        expect(r.failureReason).toMatch(/^lost: .*resumed from version/);
      }
      // The first version after the restart was taken at a step past the lost ones (numbers are not reused).
      const firstAfter = committed.find((r) => r.committedVersion === atKill.currentVersion + 1)!;
      expect(firstAfter.round).toBeGreaterThan(Math.max(lastCommittedStep, ...lost));
      const task = (await s.store.getTask('ak'))!;
      expect(task.currentVersion).toBeGreaterThanOrEqual(atKill.currentVersion + 2);
      expect(task.strategyState).toBeDefined();
    } finally {
      await s.close();
    }
  }, 240_000);
});
