/**
 * Secure aggregation without sockets, for bench/secagg.ts: N real SecAggDevice objects (the SDK's
 * device side) and one real SecAggRound (the coordinator's side) exchange the protocol's messages
 * in memory, one device at a time, so that each side's compute is timed separately on one thread.
 * Bytes are counted from the messages themselves. A fraction of devices can drop after sharing
 * (their masks are then rebuilt at unmasking). The plain-FedAvg baseline encodes the same deltas
 * as f32 and folds them into the streaming weighted mean, timed the same way.
 */
import { defaultDegree, f32Codec, type SecAggClientConfig, type SecAggDown, type SecureAggregation, type DecodedSum } from '@flotilla/protocol';
import { SecAggDevice } from '../client-sdk/src/secagg/secagg-device.js';
import { SecAggRound } from '../server/src/coordinator/secagg/secagg-round.js';
import { WeightedMean } from '../server/src/fl/weighted-mean.js';
import { createRng } from '../server/src/fl/rng.js';
import { median } from './stats.js';

export interface CostRow {
  protocol: 'plain' | 'secagg' | 'secagg+';
  n: number;
  d: number;
  threshold: number | null;
  degree: number | null;
  /** Median over devices of one device's compute for the whole round, ms. */
  deviceMs: number;
  /** Mean bytes one device sends and receives (protocol messages and its input; the model download excluded). */
  bytesUp: number;
  bytesDown: number;
  /** Coordinator compute for the round, ms. */
  coordinatorMs: number;
  /** Largest |secure mean - plain mean| over coordinates (0 for plain). */
  maxError: number;
  dropped: number;
}


function deltas(n: number, d: number, seed: number): { delta: Float32Array; examples: number }[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => ({ delta: Float32Array.from({ length: d }, () => (rng() * 2 - 1) * 0.05), examples: 50 + Math.floor(rng() * 500) }));
}

export function plainRound(n: number, d: number, seed = 1): CostRow {
  const ins = deltas(n, d, seed);
  const deviceMs: number[] = [];
  let coordinatorMs = 0;
  const mean = new WeightedMean(d);
  let bytes = 0;
  for (const x of ins) {
    const t0 = performance.now();
    const enc = f32Codec.encode(x.delta);
    deviceMs.push(performance.now() - t0);
    bytes += enc.byteLength;
    const t1 = performance.now();
    mean.add(f32Codec.decode(enc, d), x.examples);
    coordinatorMs += performance.now() - t1;
  }
  const t2 = performance.now();
  mean.mean();
  coordinatorMs += performance.now() - t2;
  return { protocol: 'plain', n, d, threshold: null, degree: null, deviceMs: median(deviceMs), bytesUp: bytes / n, bytesDown: 0, coordinatorMs, maxError: 0, dropped: 0 };
}

/** Threshold used by the bench: a majority of each device's shares (neighbours + itself). */
export function benchThreshold(protocol: 'secagg' | 'secagg+', n: number): { threshold: number; degree: number } {
  const degree = protocol === 'secagg' ? n - 1 : Math.min(n - 1, defaultDegree(n));
  return { threshold: Math.floor((degree + 1) / 2) + 1, degree };
}

export async function secureRound(protocol: 'secagg' | 'secagg+', n: number, d: number, opts: { drop?: number; seed?: number } = {}): Promise<CostRow> {
  const ins = deltas(n, d, opts.seed ?? 1);
  const { threshold, degree } = benchThreshold(protocol, n);
  const cfg: SecureAggregation = { protocol, threshold, quantization: { bits: 16, clipRange: 1 }, maxWeight: 1000, metricRange: 100, phaseTimeoutMs: 3_600_000 };
  const client: SecAggClientConfig = { protocol, bits: 16, clipRange: 1, maxWeight: 1000, metricRange: 100, metricNames: ['loss'] };
  const ids = Array.from({ length: n }, (_, i) => `d${String(i).padStart(5, '0')}`);
  const inbox = new Map<string, SecAggDown[]>(ids.map((id) => [id, []]));
  const uplink: Array<{ id: string; phase: 'keys' | 'shares' | 'unmask'; data: Uint8Array }> = [];
  let settle!: (r: DecodedSum | Error) => void;
  const outcome = new Promise<DecodedSum | Error>((r) => (settle = r));
  const rng = createRng(opts.seed ?? 1);
  const round = new SecAggRound(
    { taskId: 'bench', round: 1, deadline: Date.now() + 3_600_000, enough: n, random: rng, send: (id, m) => (inbox.get(id)!.push(m), true), done: (r) => settle(r), fail: (why) => settle(new Error(why)) },
    cfg,
    client,
    ids,
    d,
  );
  const devices = new Map(ids.map((id) => [id, new SecAggDevice('bench', 1, client, async (phase, data) => void uplink.push({ id, phase, data }))]));
  const deviceMs = new Map(ids.map((id) => [id, 0]));
  let coordinatorMs = 0;
  const onDevice = async (id: string, f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    deviceMs.set(id, deviceMs.get(id)! + performance.now() - t0);
  };
  const deliver = async () => {
    const t0 = performance.now();
    for (const u of uplink.splice(0)) await round.receive(u.id, u.phase, u.data);
    coordinatorMs += performance.now() - t0;
  };
  const drain = async (id: string) => {
    for (const m of inbox.get(id)!.splice(0)) await onDevice(id, () => devices.get(id)!.onMessage(m));
  };
  const dropCount = Math.floor((opts.drop ?? 0) * n);
  const dropped = new Set(ids.slice(0, dropCount));
  let maskedBytes = 0;
  try {
    for (const id of ids) await onDevice(id, () => devices.get(id)!.advertise());
    await deliver(); // keys -> neighbours
    for (const id of ids) await drain(id);
    await deliver(); // shares -> relayed shares
    for (const id of ids) await drain(id);
    for (const [k, id] of ids.entries()) {
      if (dropped.has(id)) {
        round.gone(id);
        continue;
      }
      let bytes!: Uint8Array;
      await onDevice(id, async () => (bytes = await devices.get(id)!.maskedInput(ins[k].delta, ins[k].examples, { loss: 1 })));
      maskedBytes += bytes.byteLength;
      const t0 = performance.now();
      round.addMasked(id, bytes);
      coordinatorMs += performance.now() - t0;
    }
    for (const id of ids) if (!dropped.has(id)) await drain(id);
    const t0 = performance.now();
    await deliver(); // unmask shares -> rebuilt masks
    const result = await outcome;
    coordinatorMs += performance.now() - t0;
    if (result instanceof Error) throw result;
    // The secure mean against the plain weighted mean of the survivors' deltas.
    const plain = new WeightedMean(d);
    ins.forEach((x, k) => !dropped.has(ids[k]) && plain.add(x.delta, Math.min(1, x.examples / 1000)));
    const p = plain.mean();
    let maxError = 0;
    for (let i = 0; i < d; i++) maxError = Math.max(maxError, Math.abs(result.mean[i] - p[i]));
    const live = ids.filter((id) => !dropped.has(id));
    const up = live.reduce((s, id) => s + devices.get(id)!.bytesUp, 0) / live.length + maskedBytes / live.length;
    const down = live.reduce((s, id) => s + devices.get(id)!.bytesDown, 0) / live.length;
    return { protocol, n, d, threshold, degree, deviceMs: median(live.map((id) => deviceMs.get(id)!)), bytesUp: up, bytesDown: down, coordinatorMs, maxError, dropped: dropCount };
  } finally {
    round.dispose();
  }
}
