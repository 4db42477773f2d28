import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlotillaApp, type RoundRecord } from '@flotilla/server';
import { FlotillaClient, LocalTrainer } from '@flotilla/client';
import type { TaskPlanInput } from '@flotilla/protocol';
import { computeRdp, DEFAULT_RDP_ORDERS, epsilonFromRdp } from '../../server/src/fl/dp/rdp-accountant.js';
import { startServer } from '../helpers/server.js';
import { synthetic } from '../helpers/synthetic.js';

/**
 * Async tasks with the features that step per buffer (docs/async.md): a server optimizer (FedAdam)
 * with screening, whose state is committed with each published version, and DP-FedAvg, whose
 * accountant counts one un-amplified Gaussian release (q = 1) per model step.
 */
describe('async FL with server optimizers, screening and DP-FedAvg', () => {
  let app: FlotillaApp;
  let url: string;
  const clients: FlotillaClient[] = [];
  beforeAll(async () => {
    ({ app, url } = await startServer({ logger: false }));
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await app.close();
  });

  async function run(id: string, plan: TaskPlanInput, devices: number, slowMs = 0): Promise<RoundRecord[]> {
    const co = app.flotilla.coordinator;
    await co.createTask({ id, preset: 'tiny-mlp', plan });
    const trainer = new LocalTrainer();
    for (let i = 0; i < devices; i++) {
      const data = synthetic(100, 70 + i);
      // With slowMs, every device but the first waits that long before reporting.
      const hooks = slowMs > 0 && i > 0 ? { beforeReport: () => new Promise<'send'>((r) => setTimeout(() => r('send'), slowMs)) } : undefined;
      const c = new FlotillaClient({ url, token: app.flotilla.deviceToken, taskId: id, data: { train: () => data }, trainer, hooks });
      c.on('error', () => {});
      clients.push(c);
      await c.start();
    }
    const done = new Promise<void>((resolve) => co.events.on('task', (t: { id: string; state: string }) => t.id === id && t.state === 'done' && resolve()));
    await co.startTask(id);
    await done;
    return (await app.flotilla.store.listRounds(id, { limit: 100 })).reverse();
  }

  it('FedAdam with screening steps per buffer and commits its moments and the screening history with each version', async () => {
    const steps = await run('adam', { mode: 'async', concurrency: 3, bufferSize: 2, maxRounds: 4, seed: 2, strategy: { name: 'fedadam' }, screening: { minHistory: 2, window: 10 } }, 4);
    expect(steps.map((r) => r.state)).toEqual(['done', 'done', 'done', 'done']);
    const task = app.flotilla.coordinator.getRunner('adam').record;
    expect(task.currentVersion).toBe(5);
    const stored = (await app.flotilla.store.getTask('adam'))!;
    expect(stored.strategyState).toBeDefined();
    expect(stored.screeningState!.length).toBe(8);
  }, 90_000);

  it('DP-FedAvg folds each device at most once per buffer and accounts every step as one Gaussian release without amplification', async () => {
    const z = 1.2;
    const steps = await run('dp', { mode: 'async', concurrency: 5, bufferSize: 3, maxRounds: 4, seed: 4, strategy: { name: 'dpfedavg', params: { noiseMultiplier: z, clipNorm: 0.5, seed: 1 } } }, 5, 1000);
    // One fast device among slow ones would fill buffers alone if it were admitted again before the buffer stepped.
    for (const s of steps) expect(new Set(s.reported).size).toBe(3);
    expect(steps.map((s) => s.trainMetrics.dpSamplingRate)).toEqual([1, 1, 1, 1]);
    const last = steps[3].trainMetrics.dpEpsilon;
    // Four compositions of the full-batch Gaussian mechanism: RDP 4 * alpha / (2 z^2) (Mironov 2017).
    expect(last).toBeCloseTo(epsilonFromRdp(DEFAULT_RDP_ORDERS, computeRdp(1, z, 4), 1e-5).epsilon, 9);
    await expect(app.flotilla.coordinator.createTask({ id: 'dp-pop', preset: 'tiny-mlp', plan: { mode: 'async', concurrency: 4, bufferSize: 3, strategy: { name: 'dpfedavg', params: { noiseMultiplier: 1, clipNorm: 1, populationSize: 1000 } } } })).rejects.toMatchObject({ code: 'FL_ERR_ASYNC_STRATEGY_UNSUPPORTED' });
  }, 90_000);
});
