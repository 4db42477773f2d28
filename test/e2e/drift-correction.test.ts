import { afterEach, describe, expect, it } from 'vitest';
import { DeviceVectors, FileStateStore, FlotillaClient, LocalTrainer, MemoryStateStore, type DeviceStateStore } from '@flotilla/client';
import { f16Codec, f32Codec, getCodec, readHeader } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { vectorFromBase64 } from '../../server/src/fl/strategies/vector-state.js';
import { RawDevice } from '../helpers/raw-device.js';
import { nextEvent, startServer } from '../helpers/server.js';
import { synthetic } from '../helpers/synthetic.js';
import { tempDir } from '../store/temp-dir.js';

/** SCAFFOLD and FedDyn end to end: real SDK devices, real sockets, a coordinator restart, bad reports. */
const N = 195; // tiny-mlp's weights, all trainable
const TOKEN = 'device-token-for-drift-tests';

let app: FlotillaApp | null = null;
let clients: FlotillaClient[] = [];
let raws: RawDevice[] = [];
afterEach(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  raws.forEach((d) => d.close());
  clients = [];
  raws = [];
  await app?.close();
  app = null;
});

function controlOf(i: { control?: unknown }): Float32Array {
  const b = i.control instanceof Uint8Array ? i.control : new Uint8Array(i.control as ArrayBuffer);
  return getCodec(readHeader(b).codec).decode(b, N);
}

async function waitTraining(id: string): Promise<number> {
  const runner = app!.flotilla.coordinator.getRunner(id);
  for (let t0 = Date.now(); runner.currentRound?.state !== 'training' && Date.now() - t0 < 20_000; ) await new Promise((r) => setTimeout(r, 20));
  return runner.currentRound!.round;
}

describe('SCAFFOLD and FedDyn through the SDK', () => {
  async function federate(plan: Record<string, unknown>, rounds: number, stores: DeviceStateStore[]): Promise<RoundRecord[]> {
    const s = await startServer({ deviceToken: TOKEN });
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'd', preset: 'tiny-mlp', plan: { clientsPerRound: stores.length, overSelect: 1, maxRounds: rounds, epochs: 1, batchSize: 16, learningRate: 0.3, ...plan } as never });
    const trainer = new LocalTrainer();
    stores.forEach((stateStore, i) => {
      const data = synthetic(200, 31 + i);
      clients.push(new FlotillaClient({ url: s.url, token: TOKEN, taskId: 'd', deviceId: `dev-${i}`, data: { train: () => data }, trainer, stateStore }));
    });
    await Promise.all(clients.map((c) => c.start()));
    const recs: RoundRecord[] = [];
    co.events.on('round', (r: RoundRecord) => recs.push(r));
    const done = nextEvent<{ state: string }>(co.events, 'task', (t) => t.state === 'done', 280_000);
    // A device writes its state once its report's ack arrives, which may come after the commit event.
    const acked = Promise.all(clients.map((c) => nextEvent<{ round: number }>(c, 'fit', (e) => e.round === rounds, 280_000)));
    await co.startTask('d');
    await Promise.all([done, acked]);
    return recs.filter((r) => r.state === 'done');
  }

  it.each([
    ['scaffold', { strategy: { name: 'scaffold', params: {} } }, 'scaffold.c'],
    ['scaffold + topk 25% (error feedback on both parts)', { strategy: { name: 'scaffold', params: {} }, codec: 'topk', topkFraction: 0.25 }, 'scaffold.c'],
    ['feddyn', { strategy: { name: 'feddyn', params: { alpha: 0.01 } } }, 'feddyn.h'],
  ])('%s lowers the loss and leaves per-device state in the store', async (_name, plan, key) => {
    const stores = [0, 1, 2, 3].map(() => new MemoryStateStore());
    const recs = await federate(plan, 5, stores);
    expect(recs.length).toBe(5);
    expect(recs[4].trainMetrics.loss).toBeLessThan(recs[0].trainMetrics.loss);
    for (const [i, st] of stores.entries()) {
      const v = await DeviceVectors.for(st, `dev-${i}`, 'd').load(key, N);
      expect(v, `device ${i} has ${key}`).not.toBeNull();
      expect(v!.some((x) => x !== 0)).toBe(true);
      if ((plan as { codec?: string }).codec === 'topk') expect(await DeviceVectors.for(st, `dev-${i}`, 'd').load('feedback.control', N)).not.toBeNull();
    }
    if (key === 'scaffold.c' && !(plan as { codec?: string }).codec) {
      // The upload doubles: model delta and control delta, f32 each (12-byte header + 4 bytes per weight).
      expect(recs[0].bytesUp).toBe(4 * 2 * (12 + 4 * N));
      // Every device reports every round here (N = 4 eligible), so c stays the mean of the devices' c_i.
      const c = vectorFromBase64((app!.flotilla.coordinator.getRunner('d').record.strategyState as { c: string }).c);
      const mean = new Float32Array(N);
      for (const [i, st] of stores.entries()) (await DeviceVectors.for(st, `dev-${i}`, 'd').load(key, N))!.forEach((x, j) => (mean[j] += x / 4));
      for (let j = 0; j < N; j++) expect(c[j]).toBeCloseTo(mean[j], 4);
    }
  }, 300_000);

  it('a restarted device resumes its control variate from a file store (server c stays the mean of the c_i)', async () => {
    const tmp = await tempDir();
    try {
      const stores = [new FileStateStore(tmp.dir), new FileStateStore(tmp.dir)];
      const s = await startServer({ deviceToken: TOKEN });
      app = s.app;
      const co = app.flotilla.coordinator;
      // minReports 1: the round the restarting device abandons commits at its deadline with the other's report.
      await co.createTask({ id: 'd', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, minReports: 1, roundDeadlineMs: 15_000, maxRounds: 5, epochs: 1, batchSize: 16, learningRate: 0.2, strategy: { name: 'scaffold', params: {} } } as never });
      const trainer = new LocalTrainer();
      let before: Float32Array | null = null;
      let restarted: Promise<void> | null = null;
      const lastFit = [0, 0];
      const make = (i: number): FlotillaClient => {
        const data = synthetic(150, 70 + i);
        const client: FlotillaClient = new FlotillaClient({
          url: s.url, token: TOKEN, taskId: 'd', deviceId: `dev-${i}`, data: { train: () => data }, trainer, stateStore: stores[i],
          hooks: {
            // Device 0's app dies after training round 3 (nothing reported, nothing written) and starts again.
            beforeReport: async ({ round }) => {
              if (i !== 0 || round !== 3 || restarted) return 'send';
              restarted = (async () => {
                await clients[0].stop();
                before = await DeviceVectors.for(stores[0], 'dev-0', 'd').load('scaffold.c', N);
                clients[0] = make(0);
                await clients[0].start();
              })();
              return 'drop';
            },
          },
        });
        client.on('fit', (e) => (lastFit[i] = e.round));
        return client;
      };
      clients = [make(0), make(1)];
      await Promise.all(clients.map((c) => c.start()));
      const done = nextEvent<{ state: string }>(co.events, 'task', (t) => t.state === 'done', 280_000);
      const lastReported = [0, 0];
      co.events.on('round', (r: RoundRecord) => r.reported.forEach((id) => (lastReported[Number(id.slice(4))] = Math.max(lastReported[Number(id.slice(4))], r.round))));
      await co.startTask('d');
      await done;
      await restarted;
      expect(before!.some((x) => x !== 0)).toBe(true); // losing it would move the server's c off the devices' mean
      // Each device's last accepted report is acknowledged (and its state written) before the check.
      for (let t0 = Date.now(); !(lastFit[0] >= lastReported[0] && lastFit[1] >= lastReported[1]) && Date.now() - t0 < 60_000; ) await new Promise((r) => setTimeout(r, 20));
      expect(lastFit).toEqual(lastReported);
      const c = vectorFromBase64((co.getRunner('d').record.strategyState as { c: string }).c);
      const c0 = (await DeviceVectors.for(stores[0], 'dev-0', 'd').load('scaffold.c', N))!;
      const c1 = (await DeviceVectors.for(stores[1], 'dev-1', 'd').load('scaffold.c', N))!;
      for (let j = 0; j < N; j++) expect(c[j]).toBeCloseTo((c0[j] + c1[j]) / 2, 4);
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
      await tmp.remove();
    }
  }, 300_000);
});

describe('control variates: bad reports and a coordinator restart', () => {
  const rep = (task: string, round: number, v: number, extra: Record<string, unknown> = {}) => ({ taskId: task, round, numExamples: 1, metrics: {}, codec: 'f32', delta: f32Codec.encode(new Float32Array(N).fill(v)), ...extra });

  it('a SCAFFOLD report without its control delta (or a bad one) is refused with a code and changes nothing', async () => {
    const s = await startServer({ deviceToken: TOKEN });
    app = s.app;
    const co = app.flotilla.coordinator;
    await co.createTask({ id: 'sc', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, roundDeadlineMs: 30_000, strategy: { name: 'scaffold', params: { populationSize: 4 } } } });
    await co.createTask({ id: 'fa', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, roundDeadlineMs: 30_000 } });
    const dev = new RawDevice(s.url);
    const other = new RawDevice(s.url);
    raws = [dev, other];
    await dev.hello(TOKEN, 'sc');
    await other.hello(TOKEN, 'fa');
    await co.startTask('sc');
    await co.startTask('fa');
    const ins = await dev.instruction(1);
    expect(Array.from(controlOf(ins))).toEqual(new Array(N).fill(0)); // c starts at 0
    const before = co.getRunner('sc').globalWeights.slice();
    const bad: Array<[Record<string, unknown>, string]> = [
      [{}, 'FL_ERR_REPORT_CONTROL_MISSING'],
      [{ control: f32Codec.encode(new Float32Array(N - 1)) }, 'FL_ERR_REPORT_SHAPE_MISMATCH'],
      [{ control: f32Codec.encode(new Float32Array(N).fill(NaN)) }, 'FL_ERR_REPORT_NON_FINITE'],
      [{ control: f16Codec.encode(new Float32Array(N)) }, 'FL_ERR_REPORT_WRONG_CODEC'],
      [{ control: new Uint8Array([1, 2, 3]) }, 'FL_ERR_CODEC_CORRUPT'],
    ];
    for (const [extra, code] of bad) {
      const r = await dev.send('fit:ready', { taskId: 'sc', round: 1, bytes: 2 * (12 + 4 * N) });
      expect(r.ok).toBe(true);
      const ack = await dev.send('fit:report', rep('sc', 1, 0.01, extra));
      expect(ack.error?.code, JSON.stringify(Object.keys(extra))).toBe(code);
    }
    expect(co.getRunner('sc').currentRound!.reported.size).toBe(0);
    expect(co.getRunner('sc').globalWeights).toEqual(before);
    // A control delta for a strategy that has none is refused too.
    await other.instruction(1);
    await other.send('fit:ready', { taskId: 'fa', round: 1, bytes: 2 * (12 + 4 * N) });
    expect((await other.send('fit:report', rep('fa', 1, 0.01, { control: f32Codec.encode(new Float32Array(N)) }))).error.code).toBe('FL_ERR_REPORT_CONTROL_UNEXPECTED');
    // The device may still send the right report: x += D, c += (1/4) dc.
    const committed = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'sc' && r.round === 1);
    await dev.send('fit:ready', { taskId: 'sc', round: 1, bytes: 2 * (12 + 4 * N) });
    expect((await dev.send('fit:report', rep('sc', 1, 0.01, { control: f32Codec.encode(new Float32Array(N).fill(2)) }))).ok).toBe(true);
    expect((await committed).state).toBe('done');
    const after = co.getRunner('sc').globalWeights;
    for (let j = 0; j < N; j++) expect(after[j]).toBeCloseTo(before[j] + 0.01, 6);
    expect(Array.from(controlOf(await dev.instruction(2)))).toEqual(new Array(N).fill(0.5));
  });

  it('SCAFFOLD and FedDyn server state survives a coordinator restart', async () => {
    const tmp = await tempDir();
    try {
      let s = await startServer({ dataDir: tmp.dir, deviceToken: TOKEN });
      app = s.app;
      let co = app.flotilla.coordinator;
      await co.createTask({ id: 'sc', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, roundDeadlineMs: 30_000, strategy: { name: 'scaffold', params: { populationSize: 2 } } } });
      await co.createTask({ id: 'fd', preset: 'tiny-mlp', plan: { clientsPerRound: 1, overSelect: 1, roundDeadlineMs: 30_000, strategy: { name: 'feddyn', params: { alpha: 0.5, populationSize: 2 } } } });
      raws = [new RawDevice(s.url), new RawDevice(s.url)];
      await raws[0].hello(TOKEN, 'sc');
      await raws[1].hello(TOKEN, 'fd');
      const both = Promise.all(['sc', 'fd'].map((id) => nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === id && r.round === 1)));
      await co.startTask('sc');
      await co.startTask('fd');
      await raws[0].instruction(1);
      await raws[1].instruction(1);
      expect((await raws[0].report(rep('sc', 1, 0.02, { control: f32Codec.encode(new Float32Array(N).fill(3)) }))).ok).toBe(true);
      expect((await raws[1].report(rep('fd', 1, 0.02))).ok).toBe(true);
      await both;
      const x1 = co.getRunner('fd').globalWeights.slice();
      raws.forEach((d) => d.close());
      await app.close();

      s = await startServer({ dataDir: tmp.dir, deviceToken: TOKEN });
      app = s.app;
      co = app.flotilla.coordinator;
      raws = [new RawDevice(s.url), new RawDevice(s.url)];
      await raws[0].hello(TOKEN, 'sc');
      await raws[1].hello(TOKEN, 'fd');
      // SCAFFOLD: the next instruction carries c = (1/2) * 3 from before the restart.
      const rs = await waitTraining('sc');
      expect(Array.from(controlOf(await raws[0].instruction(rs)))).toEqual(new Array(N).fill(1.5));
      // FedDyn: h = -0.5 * (1/2) * 0.02 was restored, so a zero delta still moves x by -h/alpha = +0.01.
      const rf = await waitTraining('fd');
      await raws[1].instruction(rf);
      const committed = nextEvent<RoundRecord>(co.events, 'round', (r) => r.taskId === 'fd' && r.round === rf);
      expect((await raws[1].report(rep('fd', rf, 0))).ok).toBe(true);
      expect((await committed).state).toBe('done');
      const x2 = co.getRunner('fd').globalWeights;
      for (let j = 0; j < N; j++) expect(x2[j]).toBeCloseTo(x1[j] + 0.01, 6);
    } finally {
      await app?.close();
      app = null;
      await tmp.remove();
    }
  });
});
