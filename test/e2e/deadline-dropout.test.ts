import { afterEach, describe, expect, it } from 'vitest';
import { f32Codec } from '@flotilla/protocol';
import { MemoryBlobStore, MemoryStore, type AppOptions, type CommitInput, type FlotillaApp, type RoundRecord } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { nextEvent, startServer } from '../helpers/server.js';

const P = 195; // tiny-mlp parameters

/** A real MemoryStore whose next commit fails once, as a full disk or a lost database would. */
class FailingOnceStore extends MemoryStore {
  failNext = false;
  override async commitRound(input: CommitInput): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('injected: disk full');
    }
    return super.commitRound(input);
  }
}

describe('failed rounds: deadlines, dropouts, commit failures', () => {
  let app: FlotillaApp;
  let devices: RawDevice[] = [];
  afterEach(async () => {
    devices.forEach((d) => d.close());
    devices = [];
    await app.close();
  });

  async function setup(plan: { clientsPerRound: number } & Record<string, unknown>, n: number, opts: AppOptions = {}) {
    const s = await startServer(opts);
    app = s.app;
    await app.flotilla.coordinator.createTask({ id: 't', preset: 'tiny-mlp', plan: { maxRounds: 10, ...plan } });
    for (let i = 0; i < n; i++) {
      const d = new RawDevice(s.url);
      devices.push(d);
      expect((await d.hello(app.flotilla.deviceToken, 't')).ok).toBe(true);
    }
    return app.flotilla.coordinator;
  }

  const report = (round: number, value: number) => ({ taskId: 't', round, numExamples: 5, metrics: { loss: 1 }, codec: 'f32', delta: f32Codec.encode(new Float32Array(P).fill(value)) });

  it('commits at the deadline with minReports, fails without them and retries with the model unchanged', async () => {
    const co = await setup({ clientsPerRound: 3, overSelect: 1, minReports: 2, roundDeadlineMs: 700 }, 3);
    const runner = co.getRunner('t');
    const w0 = Float32Array.from(runner.globalWeights);
    const first = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1);
    await co.startTask('t');
    await devices[0].instruction(1);
    expect((await devices[0].report(report(1, 1))).ok).toBe(true);
    expect((await devices[1].report(report(1, 1))).ok).toBe(true);
    const r1 = await first;
    expect(r1.state).toBe('done');
    expect(r1.reported.length).toBe(2);
    expect(r1.endedAt! - r1.startedAt).toBeGreaterThanOrEqual(600);
    expect(runner.globalWeights[0]).toBeCloseTo(w0[0] + 1, 6);

    const w1 = Float32Array.from(runner.globalWeights);
    const second = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 2);
    await devices[0].instruction(2);
    expect((await devices[0].report(report(2, 5))).ok).toBe(true);
    const r2 = await second;
    expect(r2.state).toBe('failed');
    expect(r2.failureReason).toMatch(/deadline/);
    expect(Buffer.from(runner.globalWeights.buffer).equals(Buffer.from(w1.buffer))).toBe(true);
    expect(runner.record.currentVersion).toBe(2);
    // the failed round is retried as round 3 from the same version
    const ins3 = await devices[0].instruction(3);
    expect(ins3.modelVersion).toBe(2);
    expect((await devices[0].report(report(2, 1))).error.code).toBe('FL_ERR_ROUND_LATE_REPORT');
  });

  it('drops a device that vanishes mid-round and commits with the others', async () => {
    const co = await setup({ clientsPerRound: 2, overSelect: 1.5, minReports: 2, roundDeadlineMs: 30_000 }, 3);
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1);
    await co.startTask('t');
    await devices[0].instruction(1);
    devices[2].close();
    await new Promise((r) => setTimeout(r, 200));
    expect((await devices[0].report(report(1, 1))).ok).toBe(true);
    expect((await devices[1].report(report(1, 3))).ok).toBe(true);
    const r1 = await done;
    expect(r1.state).toBe('done');
    expect(r1.dropped).toEqual([devices[2].deviceId]);
    expect(r1.reported.sort()).toEqual([devices[0].deviceId, devices[1].deviceId].sort());
  });

  it('fails a round once every selected device dropped and none came back within the reconnect grace', async () => {
    const co = await setup({ clientsPerRound: 2, overSelect: 1, minReports: 1, minAvailable: 2, roundDeadlineMs: 60_000 }, 2);
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1);
    await co.startTask('t');
    await devices[0].instruction(1);
    devices[0].close();
    devices[1].close();
    const r1 = await done;
    expect(r1.state).toBe('failed');
    expect(r1.dropped.length).toBe(2);
  });

  it('a failed commit leaves the model and the server optimizer state as last committed (FedAvgM momentum is not advanced)', async () => {
    const store = new FailingOnceStore();
    const lr = 0.5;
    const momentum = 0.9;
    const co = await setup(
      { clientsPerRound: 2, overSelect: 1, strategy: { name: 'fedavgm', params: { serverLearningRate: lr, serverMomentum: momentum } } },
      2,
      { store, blobs: new MemoryBlobStore() },
    );
    const runner = co.getRunner('t');
    const w0 = Float32Array.from(runner.globalWeights);
    const v0 = runner.record.currentVersion;

    store.failNext = true;
    const first = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1);
    await co.startTask('t');
    for (const d of devices) await d.instruction(1);
    for (const d of devices) expect((await d.report(report(1, 1))).ok).toBe(true);
    const r1 = await first;
    expect(r1.state).toBe('failed');
    expect(r1.failureReason).toMatch(/commit failed/);
    expect(Buffer.from(runner.globalWeights.buffer).equals(Buffer.from(w0.buffer))).toBe(true);
    expect(runner.record.currentVersion).toBe(v0);

    // The retry commits. Its step is the first momentum step (lr * 1), not lr * (1 + momentum):
    // the failed round's aggregate never became a model, so it must not live on in the momentum.
    const second = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 2);
    for (const d of devices) await d.instruction(2);
    for (const d of devices) expect((await d.report(report(2, 1))).ok).toBe(true);
    expect((await second).state).toBe('done');
    for (let i = 0; i < P; i++) expect(runner.globalWeights[i]).toBeCloseTo(w0[i] + lr, 5);
    expect(runner.record.currentVersion).toBe(v0 + 1);
  });
});
