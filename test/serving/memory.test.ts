import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batcher } from '../../server/src/serving/batcher.js';
import { servingApp, type ServingHarness } from './serving-helpers.js';

// A real full garbage collection from inside the test process (as `node --expose-gc` gives).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
};
const MiB = 1024 * 1024;

describe('answered requests are released', () => {
  it('the batcher keeps no answered input: array-buffer memory returns to baseline after 200 one-MiB requests', async () => {
    const width = 64 * 1024; // 256 KiB per row; 4 rows per request = 1 MiB
    const b = new Batcher(async (_x, rows) => new Float32Array(rows), width, 1, { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 100, timeoutMs: 5000 });
    await settle();
    const base = process.memoryUsage().arrayBuffers;
    const refs: WeakRef<Float32Array>[] = [];
    const one = async () => {
      const x = new Float32Array(4 * width).fill(1);
      refs.push(new WeakRef(x));
      return (await b.submit(x, 4)).output.length;
    };
    // At most two in flight, as in the report that found the leak.
    for (let i = 0; i < 100; i++) expect(await Promise.all([one(), one()])).toEqual([4, 4]);
    await settle();
    const grown = process.memoryUsage().arrayBuffers - base;
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    expect(grown).toBeLessThan(32 * MiB);
  });

  describe('through Serving.infer (cache, routing, payload log, drift, bandit ledger)', () => {
    let h: ServingHarness;
    beforeAll(async () => {
      h = await servingApp({ serving: { payloadSampleRate: 1, maxRowsPerRequest: 4096 } });
      await h.publishTiny('tiny', 2);
      await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'arms', model: 'tiny', routing: { mode: 'bandit', targets: [{ ref: '1' }, { ref: '2' }] } } });
    });
    afterAll(async () => {
      await h.app.close();
    });

    it('holds no served input once answered (every request logged, bandit deployment)', async () => {
      const serving = h.app.flotilla.serving;
      const refs: WeakRef<Float32Array>[] = [];
      const one = async (i: number) => {
        const rows = 4096;
        const data = new Float32Array(rows * 8).fill(i % 3);
        refs.push(new WeakRef(data));
        const res = await serving.infer({ endpoint: 'arms', requestId: `m-${i}`, parse: () => ({ data, rows }) });
        return res.rows;
      };
      for (let i = 0; i < 50; i += 2) expect(await Promise.all([one(i), one(i + 1)])).toEqual([4096, 4096]);
      await serving.payloads.flush();
      await settle();
      expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
    });
  });
});
