import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { newRoundRecord } from '../../server/src/coordinator/round-record.js';
import { openStorage } from '../../server/src/store/open-storage.js';
import { nextEvent, startServer } from '../helpers/server.js';
import { synthetic } from '../helpers/synthetic.js';

/**
 * What an async task's store can hold after a SIGKILL (docs/async.md, "Versions and resume"),
 * written here as a crash would have left it, then a coordinator started on it. A CI run of
 * test/chaos/async-restart.test.ts ended with a step it had seen unpublished at the kill still
 * `done` after the restart; both ways that could happen are set up:
 * - an unpublished step older than a step that had failed (the start-up walk used to stop at the
 *   first failed record, leaving the older unpublished steps `done`);
 * - the newest step stored while the task's `nextRound` was not yet past it (the step used to be
 *   stored before its number was reserved, so a kill in between let the restarted runner hand the
 *   number out again and overwrite the lost step's record).
 */
describe('async task resume repairs what a kill left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-async-repair-'));
  let app: FlotillaApp | undefined;
  const clients: FlotillaClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('marks every unpublished step lost, keeps failed ones as they were, and never reuses a stored step number', async () => {
    let s = await startServer({ dataDir: dir });
    app = s.app;
    await app.flotilla.coordinator.createTask({
      id: 'ak',
      preset: 'tiny-mlp',
      plan: { mode: 'async', concurrency: 1, bufferSize: 1, publishEvery: 1, maxRounds: 100_000, epochs: 1, batchSize: 16, roundDeadlineMs: 10_000 },
    });
    await app.close();
    app = undefined;

    // The store as a kill could leave it: steps 1 and 3 unpublished, 2 failed, nextRound still 3.
    const storage = await openStorage({ dataDir: dir });
    const task = (await storage.store.getTask('ak'))!;
    const step = (round: number, state: RoundRecord['state'], failureReason?: string): RoundRecord => ({ ...newRoundRecord(task, round, [], Date.now()), state, ...(failureReason ? { failureReason } : {}) });
    await storage.store.saveRound(step(1, 'done'));
    await storage.store.saveRound(step(2, 'failed', 'commit failed: disk full'));
    await storage.store.saveRound(step(3, 'done'));
    await storage.store.updateTask('ak', { nextRound: 3 });
    await storage.close();

    s = await startServer({ dataDir: dir });
    app = s.app;
    const co = app.flotilla.coordinator;
    const steps = async () => new Map((await app!.flotilla.store.listRounds('ak', { limit: 100 })).map((r) => [r.round, r]));
    const repaired = await steps();
    for (const n of [1, 3]) {
      expect(repaired.get(n)!.state, `step ${n}`).toBe('failed');
      expect(repaired.get(n)!.failureReason).toMatch(/^lost: .*resumed from version 1/);
    }
    expect(repaired.get(2)!.failureReason).toBe('commit failed: disk full');

    // The next step a device brings is numbered past every stored one.
    const published = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'ak' && r.committedVersion !== undefined, 60_000);
    await co.startTask('ak');
    const data = synthetic(64, 11);
    const c = new FlotillaClient({ url: s.url, token: app.flotilla.deviceToken, taskId: 'ak', data: { train: () => data }, trainer: new LocalTrainer() });
    c.on('error', () => {});
    clients.push(c);
    await c.start();
    const first = await published;
    expect(first.round).toBe(4);
    expect(first.committedVersion).toBe(2);
    expect((await steps()).get(3)!.state).toBe('failed');
  }, 120_000);
});
