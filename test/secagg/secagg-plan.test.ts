import { afterEach, describe, expect, it } from 'vitest';
import { f32Codec, type TaskPlanInput } from '@flotilla/protocol';
import type { FlotillaApp } from '@flotilla/server';
import { RawDevice } from '../helpers/raw-device.js';
import { startServer } from '../helpers/server.js';

/**
 * Plans that cannot work with secure aggregation are refused with a code that says why, and
 * devices that break the protocol get coded refusals that change nothing in the round.
 */
const SA = { protocol: 'secagg+' as const, threshold: 4, quantization: { bits: 16, clipRange: 1 } };
let app: FlotillaApp;
let devices: RawDevice[] = [];

afterEach(async () => {
  devices.forEach((d) => d.close());
  devices = [];
  await app?.close();
});

async function refusal(plan: Partial<TaskPlanInput> & Record<string, unknown>): Promise<{ code: string; details: any }> {
  try {
    await app.flotilla.coordinator.createTask({ id: `t${Math.random().toString(36).slice(2, 8)}`, preset: 'tiny-mlp', plan: { clientsPerRound: 4, ...plan } });
  } catch (err) {
    return err as { code: string; details: any };
  }
  throw new Error('plan was accepted');
}

describe('secure aggregation plans', () => {
  it('refuses strategies and screening that need individual updates, codecs that do not add up, and unsound thresholds', async () => {
    app = (await startServer()).app;
    for (const name of ['fedmedian', 'fedtrimmedavg', 'krum', 'multikrum', 'normbounded', 'dpfedavg']) {
      const params = name === 'krum' || name === 'multikrum' ? { byzantine: 0 } : name === 'normbounded' ? { maxNorm: 1 } : name === 'dpfedavg' ? { noiseMultiplier: 1, clipNorm: 1 } : {};
      const e = await refusal({ clientsPerRound: 5, strategy: { name, params }, secureAggregation: SA });
      expect(e.code).toBe('FL_ERR_SECAGG_STRATEGY_REFUSED');
      expect(e.details.why).toBeTruthy();
    }
    expect((await refusal({ screening: { action: 'reject' }, secureAggregation: SA })).code).toBe('FL_ERR_SECAGG_STRATEGY_REFUSED');
    // Drift correction's control deltas would travel beside the masked update in the clear.
    for (const name of ['scaffold', 'feddyn']) {
      const e = await refusal({ strategy: { name, params: {} }, secureAggregation: SA });
      expect(e.code, JSON.stringify(e.details)).toBe('FL_ERR_SECAGG_STRATEGY_REFUSED');
    }
    // Secure aggregation runs in rounds: an async plan naming it is refused with the field named.
    const async = await refusal({ clientsPerRound: undefined, mode: 'async', concurrency: 4, bufferSize: 4, secureAggregation: SA });
    expect(async.code).toBe('FL_ERR_TASK_INVALID_SPEC');
    expect(JSON.stringify(async.details)).toMatch(/secureAggregation/);
    for (const codec of ['f16', 'int8', 'topk'] as const) expect((await refusal({ codec, secureAggregation: SA })).code).toBe('FL_ERR_SECAGG_CODEC_REFUSED');
    const invalid = [
      { ...SA, threshold: 9 }, // more than the devices selected
      { ...SA, neighbours: 2, threshold: 4 }, // more than neighbours + 1 shares
      { ...SA, protocol: 'secagg' as const, neighbours: 2 },
      { ...SA, threshold: 3 }, // not above half of the 6 shares (5 neighbours + 1)
      { ...SA, threshold: 12, quantization: { bits: 24, clipRange: 1 } }, // 1300 x 2^23 wraps around 2^32
    ];
    const plans = invalid.map((s, i) => (i === 4 ? { clientsPerRound: 1000, secureAggregation: s } : { secureAggregation: s }));
    for (const p of plans) expect((await refusal(p)).code).toBe('FL_ERR_SECAGG_INVALID_PLAN');
    // Sound ones pass: the FedAvg family with f32.
    for (const name of ['fedavg', 'fedavgm', 'fedadam']) {
      await app.flotilla.coordinator.createTask({ id: `ok-${name}`, preset: 'tiny-mlp', plan: { clientsPerRound: 4, strategy: { name, params: {} }, secureAggregation: SA } });
    }
  });

  it('devices that break the protocol get coded refusals and the round carries on', async () => {
    const s = await startServer({ reconnectGraceMs: 0 });
    app = s.app;
    await app.flotilla.coordinator.createTask({ id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 2, overSelect: 1, secureAggregation: { ...SA, protocol: 'secagg', threshold: 2 } } });
    for (let i = 0; i < 2; i++) {
      const d = new RawDevice(s.url);
      devices.push(d);
      expect((await d.hello(app.flotilla.deviceToken, 't')).ok).toBe(true);
    }
    await app.flotilla.coordinator.startTask('t');
    const ins = await devices[0].instruction(1);
    expect(ins.plan.secureAggregation).toMatchObject({ protocol: 'secagg', bits: 16, clipRange: 1, metricNames: ['loss', 'accuracy'] });
    const [a, b] = devices;
    // A plain report on a secure task.
    const plain = await a.report({ taskId: 't', round: 1, numExamples: 5, metrics: {}, codec: 'f32', delta: f32Codec.encode(new Float32Array(195)) });
    expect(plain.error.code).toBe('FL_ERR_SECAGG_PLAIN_REPORT');
    // Keys of the wrong size, shares before the share phase, masked input without a grant.
    expect((await a.send('secagg', { taskId: 't', round: 1, phase: 'keys', data: new Uint8Array(10) })).error.code).toBe('FL_ERR_SECAGG_BAD_MESSAGE');
    expect((await a.send('secagg', { taskId: 't', round: 1, phase: 'shares', data: new Uint8Array(160) })).error.code).toBe('FL_ERR_SECAGG_WRONG_PHASE');
    expect((await a.send('secagg:masked', { taskId: 't', round: 1, masked: new Uint8Array(8) })).error.code).toBe('FL_ERR_PROTO_UPLOAD_NOT_GRANTED');
    expect((await a.send('secagg', { taskId: 't', round: 1, phase: 'keys', data: 'not bytes' })).error.code).toBe('FL_ERR_PROTO_INVALID_MESSAGE');
    // Valid keys still go through, once.
    const keys = new Uint8Array(64).fill(7);
    expect((await a.send('secagg', { taskId: 't', round: 1, phase: 'keys', data: keys })).ok).toBe(true);
    expect((await a.send('secagg', { taskId: 't', round: 1, phase: 'keys', data: keys })).error.code).toBe('FL_ERR_SECAGG_WRONG_PHASE');
    const neighbours = new Promise<any>((r) => b.socket.once('secagg', r));
    expect((await b.send('secagg', { taskId: 't', round: 1, phase: 'keys', data: new Uint8Array(64).fill(9) })).ok).toBe(true);
    const m = await neighbours;
    expect(m.phase).toBe('neighbours');
    expect(m.neighbours).toHaveLength(1);
    expect(Buffer.from(m.keys)).toEqual(Buffer.from(keys)); // b is given a's public keys, relayed as sent
    // Shares of the wrong length for the neighbour list.
    expect((await b.send('secagg', { taskId: 't', round: 1, phase: 'shares', data: new Uint8Array(100) })).error.code).toBe('FL_ERR_SECAGG_BAD_MESSAGE');
    expect(app.flotilla.coordinator.getRunner('t').currentRound?.secagg?.phase).toBe('share');
  });
});
