import { afterEach, describe, expect, it } from 'vitest';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import { clientPlanOf, encodeInput, generateKeyPair, type SecAggClientConfig, type SecAggMasked, type SecAggUp, type TaskPlanInput } from '@flotilla/protocol';
import type { FlotillaApp, RoundRecord } from '@flotilla/server';
import { nextEvent, startServer } from '../helpers/server.js';
import { RawDevice } from '../helpers/raw-device.js';
import { synthetic } from '../helpers/synthetic.js';
import { expectSecureFedAvg } from '../helpers/secagg-expect.js';
import type { TaskRunner } from '../../server/src/coordinator/task-runner.js';

/**
 * Secure aggregation end to end: real socket.io, real tfjs training in SDK devices, the
 * coordinator relaying keys and sealed shares, summing masked inputs and unmasking. The committed
 * model must move by the plain example-weighted FedAvg mean of the survivors' deltas, within the
 * quantization error; dropouts at every phase must still unmask; too many must fail the round.
 */
const BITS = 20;
const CLIP = 4;
const MAX_WEIGHT = 1000;

interface Device {
  client: FlotillaClient;
  examples: number;
  deltas: Map<number, Float32Array>;
}

let app: FlotillaApp;
let devices: Device[] = [];

afterEach(async () => {
  await Promise.all(devices.map((d) => d.client.stop()));
  devices = [];
  await app?.close();
});

function secagg(over: Record<string, unknown> = {}) {
  return { protocol: 'secagg+' as 'secagg' | 'secagg+', threshold: 3, quantization: { bits: BITS, clipRange: CLIP }, maxWeight: MAX_WEIGHT, phaseTimeoutMs: 20_000, ...over };
}

let serverUrl = '';

async function setup(n: number, plan: Partial<TaskPlanInput> & Record<string, unknown>, hold?: (i: number) => Promise<void>) {
  const s = await startServer({ reconnectGraceMs: 0 });
  app = s.app;
  serverUrl = s.url;
  const co = app.flotilla.coordinator;
  await co.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: n, overSelect: 1, maxRounds: 1, epochs: 1, batchSize: 16, learningRate: 0.3, roundDeadlineMs: 120_000, ...plan } });
  const trainer = new LocalTrainer();
  for (let i = 0; i < n; i++) {
    const examples = 60 + 35 * i;
    const data = synthetic(examples, 100 + i);
    const d: Device = { client: null as unknown as FlotillaClient, examples, deltas: new Map() };
    d.client = new FlotillaClient({
      url: s.url,
      token: app.flotilla.deviceToken,
      taskId: 't',
      data: { train: () => data },
      trainer,
      hooks: {
        transformDelta: (delta, info) => void d.deltas.set(info.round, delta.slice()),
        beforeReport: async () => (await hold?.(i), 'send'),
      },
    });
    await d.client.start();
    devices.push(d);
  }
  return co;
}

/** The committed model moved by the example-weighted mean of these devices' deltas, within the quantization bound. */
const expectFedAvg = (before: Float32Array, after: Float32Array, round: number, survivors: Device[]) =>
  expectSecureFedAvg(before, after, survivors.map((d) => ({ examples: d.examples, delta: d.deltas.get(round)! })), { bits: BITS, clipRange: CLIP, maxWeight: MAX_WEIGHT });

describe('secure aggregation over real sockets with real training', () => {
  it('the secure aggregate equals plain FedAvg within the quantization error; the coordinator never holds an individual update', async () => {
    const co = await setup(5, { secureAggregation: secagg({ neighbours: 2 }) });
    const runner = co.getRunner('t') as TaskRunner;
    const before = Float32Array.from(runner.globalWeights);
    // Everything the coordinator receives from devices in this round.
    const ups: Array<{ id: string; m: SecAggUp }> = [];
    const masked = new Map<string, Uint8Array>();
    const onSecAgg = runner.onSecAgg.bind(runner);
    runner.onSecAgg = (id, m) => (ups.push({ id, m }), onSecAgg(id, m));
    const onMasked = runner.onMasked.bind(runner);
    runner.onMasked = (id, m: SecAggMasked) => (masked.set(id, m.masked.slice()), onMasked(id, m));
    const plainReport = runner.onReport.bind(runner);
    let plain = 0;
    runner.onReport = (id, r) => (plain++, plainReport(id, r));

    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1, 120_000);
    await co.startTask('t');
    await new Promise((r) => setImmediate(r));
    const sa = runner.currentRound!.secagg!;
    const r1 = await done;
    expect(r1.state).toBe('done');
    expect(r1.reported.length).toBe(5);
    const view = r1.secureAggregation!;
    expect(view.outcome).toBe('unmasked');
    expect(view.phases.map((p) => p.phase)).toEqual(['advertise', 'share', 'masked', 'unmask']);
    expect(view.degree).toBe(2);
    expect(view.dropped).toEqual({});
    const worst = expectFedAvg(before, runner.globalWeights, 1, devices);
    expect(worst).toBeGreaterThan(0); // quantized, not exact: the bound above is what holds
    // Example weighting without any count in the clear: the round learns the total only (the summed weight).
    expect(Math.abs(r1.trainMetrics.examples - devices.reduce((s, d) => s + d.examples, 0))).toBeLessThanOrEqual(1);
    expect(r1.trainMetrics.participants).toBe(5);
    expect(r1.trainMetrics.loss).toBeGreaterThan(0);

    // What the coordinator held: no plain reports; masked inputs unrelated to the quantized deltas;
    // revealed shares never of both secrets of one device (seed shares of survivors only).
    expect(plain).toBe(0);
    expect(masked.size).toBe(5);
    const cfg: SecAggClientConfig = clientPlanOf(runner.record.plan).secureAggregation!;
    for (const d of devices) {
      // A copy into a fresh buffer: a Buffer's slice() is a view, and its .buffer may be a larger pool.
      const y = new Uint32Array(new Uint8Array(masked.get(d.client.deviceId!)!).buffer);
      const q = encodeInput(d.deltas.get(1)!, d.examples, {}, cfg);
      let same = 0;
      for (let i = 0; i < q.length - 2; i++) if (y[i] === q[i]) same++;
      expect(same / q.length).toBeLessThan(0.02);
    }
    const held = sa as unknown as { seedShares: Map<number, unknown[]>; keyShares: Map<number, unknown[]> };
    expect(held.keyShares.size).toBe(0); // nobody dropped: no mask key is ever revealed
    expect(held.seedShares.size).toBe(5);
    expect(ups.filter((u) => u.m.phase === 'unmask').length).toBe(5);
  });

  it('devices dropping after advertising keys, after sharing and after sending masked input still let the round commit', async () => {
    const co = await setup(7, { secureAggregation: secagg({ protocol: 'secagg', threshold: 4 }) });
    const runner = co.getRunner('t') as TaskRunner;
    const before = Float32Array.from(runner.globalWeights);
    const [afterKeys, afterShares, afterInput] = devices;
    afterKeys.client.on('secagg', (e) => e.phase === 'keys' && void afterKeys.client.stop());
    afterShares.client.on('secagg', (e) => e.phase === 'shares' && void afterShares.client.stop());
    afterInput.client.on('fit', () => void afterInput.client.stop());
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1, 120_000);
    await co.startTask('t');
    await new Promise((r) => setImmediate(r));
    const sa = runner.currentRound!.secagg! as unknown as { seedShares: Map<number, unknown[]>; keyShares: Map<number, unknown[]>; indices: ReadonlyMap<string, number> };
    const r1 = await done;
    expect(r1.state).toBe('done');
    const view = r1.secureAggregation!;
    expect(view.outcome).toBe('unmasked');
    expect(view.dropped.share).toEqual([afterKeys.client.deviceId]);
    expect(view.dropped.masked).toEqual([afterShares.client.deviceId]);
    expect(view.dropped.unmask).toEqual([afterInput.client.deviceId]);
    // The device that dropped after its masked input is in the sum; the other two are not.
    const survivors = devices.filter((d) => d !== afterKeys && d !== afterShares);
    expect(new Set(r1.reported)).toEqual(new Set(survivors.map((d) => d.client.deviceId)));
    expectFedAvg(before, runner.globalWeights, 1, survivors);
    // The dropped-after-sharing device's mask key was rebuilt; its seed never revealed; and the reverse for survivors.
    const gone = sa.indices.get(afterShares.client.deviceId!)!;
    expect([...sa.keyShares.keys()]).toEqual([gone]);
    expect(sa.seedShares.has(gone)).toBe(false);
    for (const v of sa.seedShares.keys()) expect(sa.keyShares.has(v)).toBe(false);
  });

  it('too many dropouts fail the round cleanly and leave the model unchanged', async () => {
    const co = await setup(4, { secureAggregation: secagg({ protocol: 'secagg', threshold: 3 }) });
    const runner = co.getRunner('t') as TaskRunner;
    const before = Float32Array.from(runner.globalWeights);
    const version = runner.record.currentVersion;
    for (const d of devices.slice(0, 2)) d.client.on('secagg', (e) => e.phase === 'keys' && void d.client.stop());
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1, 120_000);
    await co.startTask('t');
    const r1 = await done;
    expect(r1.state).toBe('failed');
    expect(r1.failureReason).toMatch(/secure aggregation: 2 devices completed share, threshold 3/);
    expect(r1.secureAggregation!.outcome).toBe('failed');
    expect(runner.record.currentVersion).toBe(version);
    expect(Buffer.from(runner.globalWeights.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    const stored = await app.flotilla.store.getRound('t', 1);
    expect(stored!.secureAggregation!.outcome).toBe('failed');
  });

  it('distributed DP: devices clip to the L2 norm and add noise; the sum carries noise z C sqrt(m / t)', async () => {
    const C = 0.05;
    const z = 2;
    const co = await setup(4, { secureAggregation: secagg({ protocol: 'secagg', threshold: 3, distributedDp: { clipNorm: C, noiseMultiplier: z } }) });
    const runner = co.getRunner('t') as TaskRunner;
    const before = Float32Array.from(runner.globalWeights);
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1, 120_000);
    await co.startTask('t');
    const r1 = await done;
    expect(r1.state).toBe('done');
    expect(r1.trainMetrics.dpNoiseMultiplier).toBeCloseTo(z * Math.sqrt(4 / 3), 6);
    // Unweighted mean of the clipped deltas, and what is left is the noise: std z C sqrt(m / t) / m per coordinate.
    const clipped = devices.map((d) => {
      const x = d.deltas.get(1)!;
      const norm = Math.hypot(...x);
      return Array.from(x, (v) => (norm > C ? (v * C) / norm : v));
    });
    const residual = Array.from(before, (b, i) => runner.globalWeights[i] - b - clipped.reduce((s, c) => s + c[i], 0) / 4);
    const std = Math.sqrt(residual.reduce((s, r) => s + r * r, 0) / residual.length);
    const expected = (z * C * Math.sqrt(4 / 3)) / 4;
    expect(std).toBeGreaterThan(expected * 0.75);
    expect(std).toBeLessThan(expected * 1.25);
  });

  it('over-selection: masked inputs close at clientsPerRound; stragglers count as dropped and their masks are rebuilt', async () => {
    let release!: () => void;
    const straggling = new Promise<void>((r) => (release = r));
    const co = await setup(5, { clientsPerRound: 3, overSelect: 1.4, minAvailable: 5, secureAggregation: secagg({ protocol: 'secagg', threshold: 3 }) }, (i) => (i === 4 ? straggling : Promise.resolve()));
    const runner = co.getRunner('t') as TaskRunner;
    const before = Float32Array.from(runner.globalWeights);
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1, 120_000);
    await co.startTask('t');
    const r1 = await done;
    release();
    expect(r1.selected.length).toBe(5);
    expect(r1.state).toBe('done');
    expect(r1.reported.length).toBe(3);
    expect(r1.secureAggregation!.dropped.masked).toContain(devices[4].client.deviceId);
    expect(r1.secureAggregation!.dropped.masked!.length).toBe(2);
    expectFedAvg(before, runner.globalWeights, 1, devices.filter((d) => r1.reported.includes(d.client.deviceId!)));
  });

  it('a device that stays connected but goes silent is dropped when the phase deadline passes', async () => {
    const co = await setup(3, { clientsPerRound: 4, minAvailable: 4, secureAggregation: secagg({ protocol: 'secagg', threshold: 3, phaseTimeoutMs: 8000 }) });
    const silent = new RawDevice(serverUrl);
    expect((await silent.hello(app.flotilla.deviceToken, 't')).ok).toBe(true);
    const runner = co.getRunner('t') as TaskRunner;
    const before = Float32Array.from(runner.globalWeights);
    const done = nextEvent<RoundRecord>(co.events, 'round', (r) => r.round === 1, 120_000);
    await co.startTask('t');
    await silent.instruction(1);
    // Long enough for the others' key phases under load (training shares their event loop); it advertises keys (an X25519 public key pair of its own), then never shares.
    const [a, b] = await Promise.all([generateKeyPair(), generateKeyPair()]);
    expect((await silent.send('secagg', { taskId: 't', round: 1, phase: 'keys', data: Buffer.concat([a.publicKey, b.publicKey]) })).ok).toBe(true);
    const r1 = await done;
    silent.close();
    expect({ state: r1.state, reason: r1.failureReason, view: r1.secureAggregation }).toMatchObject({ state: 'done' });
    expect(r1.secureAggregation!.dropped).toEqual({ share: [silent.deviceId] });
    const share = r1.secureAggregation!.phases.find((p) => p.phase === 'share')!;
    expect(share.endedAt! - share.startedAt).toBeGreaterThanOrEqual(7900);
    expectFedAvg(before, runner.globalWeights, 1, devices);
  });
});

