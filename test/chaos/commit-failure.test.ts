import { afterEach, describe, expect, it } from 'vitest';
import { f32Codec } from '@flotilla/client/tensor';
import { MemoryBlobStore, MemoryStore, type CommitInput, type FlotillaApp, type RoundRecord } from '@flotilla/server';
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

describe('a round whose commit fails', () => {
  let app: FlotillaApp;
  let devices: RawDevice[] = [];
  afterEach(async () => {
    devices.forEach((d) => d.close());
    devices = [];
    await app.close();
  });

  it('leaves the model and the server optimizer state as last committed (FedAvgM momentum is not advanced)', async () => {
    const store = new FailingOnceStore();
    const s = await startServer({ store, blobs: new MemoryBlobStore() });
    app = s.app;
    const co = app.flotilla.coordinator;
    const lr = 0.5;
    const momentum = 0.9;
    await co.createTask({
      id: 'm',
      preset: 'tiny-mlp',
      plan: { clientsPerRound: 2, overSelect: 1, maxRounds: 10, strategy: { name: 'fedavgm', params: { serverLearningRate: lr, serverMomentum: momentum } } },
    });
    for (let i = 0; i < 2; i++) {
      const d = new RawDevice(s.url);
      devices.push(d);
      expect((await d.hello(app.flotilla.deviceToken, 'm')).ok).toBe(true);
    }
    const runner = co.getRunner('m');
    const w0 = Float32Array.from(runner.globalWeights);
    const v0 = runner.record.currentVersion;
    const report = (round: number) => ({ taskId: 'm', round, numExamples: 5, metrics: {}, codec: 'f32', delta: f32Codec.encode(new Float32Array(P).fill(1)) });

    store.failNext = true;
    const first = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1);
    await co.startTask('m');
    for (const d of devices) await d.instruction(1);
    for (const d of devices) expect((await d.send('fit:report', report(1))).ok).toBe(true);
    const r1 = await first;
    expect(r1.state).toBe('failed');
    expect(r1.failureReason).toMatch(/commit failed/);
    expect(Buffer.from(runner.globalWeights.buffer).equals(Buffer.from(w0.buffer))).toBe(true);
    expect(runner.record.currentVersion).toBe(v0);

    // The retry commits. Its step is the first momentum step (lr * 1), not lr * (1 + momentum):
    // the failed round's aggregate never became a model, so it must not live on in the momentum.
    const second = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 2);
    for (const d of devices) await d.instruction(2);
    for (const d of devices) expect((await d.send('fit:report', report(2))).ok).toBe(true);
    expect((await second).state).toBe('done');
    for (let i = 0; i < P; i++) expect(runner.globalWeights[i]).toBeCloseTo(w0[i] + lr, 5);
    expect(runner.record.currentVersion).toBe(v0 + 1);
  });
});
