import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { FlotillaClient, LocalTrainer, type Dataset } from '@flotilla/client';
import { modelFromSpec, setFlatWeights } from '@flotilla/model';
import { openStorage } from '../../server/src/store/open-storage.js';
import { Registry } from '../../server/src/registry/registry.js';
import { admin, startChildServer, type ChildServer } from '../helpers/child-server.js';
import { synthetic } from '../helpers/synthetic.js';


const TARGET = 10; // committed rounds per run
const KILLS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function accuracyOf(dataDir: string, test: Dataset): Promise<number> {
  const s = await openStorage({ dataDir });
  try {
    const reg = new Registry(s.store, s.blobs, { variants: [] });
    const v = await reg.resolve('chaos', 'latest');
    const model = await modelFromSpec(v.record.spec!);
    setFlatWeights(model, await reg.readWeights(v.record), v.record.spec!.manifest);
    const pred = model.predict(tf.tensor2d(test.x, [test.y.length, 8])) as tf.Tensor;
    const labels = (await pred.argMax(1).data()) as Int32Array;
    return labels.reduce((a, l, i) => a + (l === test.y[i] ? 1 : 0), 0) / test.y.length;
  } finally {
    await s.close();
  }
}

/**
 * Issue 7 chaos: a child-process coordinator is SIGKILLed at random points of a run (selection,
 * upload, commit: whatever the seeded delays hit) and restarted on the same data dir and port.
 * Afterwards versions are contiguous and parented, every artifact verifies, no round committed
 * twice, and the model is in the same accuracy band as an uninterrupted run's.
 */
describe('SIGKILL at random points', () => {
  const clients: FlotillaClient[] = [];
  const servers: ChildServer[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    for (const s of servers) await s.stop('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function run(chaos: boolean): Promise<{ dataDir: string; kills: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-chaos-'));
    dirs.push(dir);
    let server = await startChildServer({ dataDir: dir });
    servers.push(server);
    const port = Number(new URL(server.url).port);
    const dataDir = server.dataDir;
    await admin(server, 'POST', '/api/v1/tasks', {
      id: 'chaos',
      preset: 'tiny-mlp',
      plan: { clientsPerRound: 3, overSelect: 1, maxRounds: 100_000, epochs: 1, batchSize: 16, learningRate: 0.3, roundDeadlineMs: 10_000, seed: 5 },
      start: true,
    });
    const trainer = new LocalTrainer();
    const mine: FlotillaClient[] = [];
    for (let i = 0; i < 4; i++) {
      const data = synthetic(150, 100 + i);
      const c = new FlotillaClient({ url: server.url, token: server.deviceToken, taskId: 'chaos', data: { train: () => data }, trainer, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
      c.on('error', () => {});
      mine.push(c);
      clients.push(c);
    }
    await Promise.all(mine.map((c) => c.start()));
    let kills = 0;
    let seed = 99;
    const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296);
    for (;;) {
      const t = await admin(server, 'GET', '/api/v1/tasks/chaos').catch(() => null);
      if (t && t.currentVersion >= TARGET + 1 && (!chaos || kills >= KILLS)) break;
      if (chaos && kills < KILLS && t && t.currentVersion >= 2 + kills * 2) {
        await sleep(50 + rand() * 400);
        await server.stop('SIGKILL');
        kills++;
        server = await startChildServer({ dataDir, port });
        servers.push(server);
      }
      await sleep(30);
    }
    await Promise.all(mine.map((c) => c.stop()));
    await server.stop('SIGTERM');
    return { dataDir, kills };
  }

  it('loses nothing, commits no round twice, and ends in the accuracy band of an uninterrupted run', async () => {
    const test = synthetic(600, 4242);
    const clean = await run(false);
    const chaos = await run(true);
    expect(chaos.kills).toBe(KILLS);

    const s = await openStorage({ dataDir: chaos.dataDir });
    const versions = (await s.store.listVersions('chaos', { includeArchived: true })).reverse();
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
    for (const v of versions) {
      if (v.version > 1) expect(v.parentVersion).toBe(v.version - 1);
      for (const a of v.artifacts) expect(await s.blobs.get(a.sha256)).not.toBeNull(); // get verifies sha256
    }
    const rounds = versions.filter((v) => v.version > 1).map((v) => v.round);
    expect(new Set(rounds).size).toBe(rounds.length);
    const recs = await s.store.listRounds('chaos', { limit: 1000 });
    const committed = recs.filter((r) => r.committedVersion !== undefined).map((r) => r.committedVersion);
    expect(new Set(committed).size).toBe(committed.length);
    expect(recs.filter((r) => r.failureReason === 'coordinator restarted mid-round').length).toBeGreaterThan(0);
    await s.close();

    const accClean = await accuracyOf(clean.dataDir, test);
    const accChaos = await accuracyOf(chaos.dataDir, test);
    console.log(`chaos: ${chaos.kills} SIGKILLs; held-out accuracy ${accChaos.toFixed(3)} vs ${accClean.toFixed(3)} uninterrupted`);
    expect(accClean).toBeGreaterThan(0.6);
    expect(Math.abs(accChaos - accClean)).toBeLessThan(0.12);
  }, 240_000);
});
