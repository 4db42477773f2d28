import { describe, expect, it } from 'vitest';
import { AppError } from '../../server/src/errors.js';
import { Batcher } from '../../server/src/serving/batcher.js';
import { Histogram, RateWindow } from '../../server/src/serving/histogram.js';

/** A runner that doubles each of 2 features into 1 output (their sum * 2), recording batch sizes. */
function runner(delayMs = 0) {
  const batches: number[] = [];
  const run = async (x: Float32Array, rows: number) => {
    batches.push(rows);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    const out = new Float32Array(rows);
    for (let i = 0; i < rows; i++) out[i] = 2 * (x[2 * i] + x[2 * i + 1]);
    return out;
  };
  return { run, batches };
}
const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as AppError).code;
  }
};

describe('Batcher', () => {
  it('groups concurrent requests up to maxBatchSize and answers each its own rows', async () => {
    const r = runner();
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 8, maxQueueDelayMs: 20, maxQueueSize: 100, timeoutMs: 5000 });
    const reqs = Array.from({ length: 20 }, (_, i) => b.submit(Float32Array.of(i, 1), 1));
    const res = await Promise.all(reqs);
    res.forEach((x, i) => expect(Array.from(x.output)).toEqual([2 * (i + 1)]));
    expect(r.batches).toEqual([8, 8, 4]);
    expect(b.stats()).toMatchObject({ batches: 3, rows: 20, batchSizes: { 4: 1, 8: 2 } });
    expect(res[0].batchRows).toBe(8);
  });

  it("with delay 'fixed' (Triton's), runs a partial batch once its oldest request waited maxQueueDelayMs", async () => {
    const r = runner();
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 64, maxQueueDelayMs: 30, maxQueueSize: 100, timeoutMs: 5000, delay: 'fixed' });
    const t0 = performance.now();
    const [a] = await Promise.all([b.submit(Float32Array.of(1, 1), 1), b.submit(Float32Array.of(2, 2), 1)]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(a.queueMs).toBeGreaterThanOrEqual(25);
    expect(r.batches).toEqual([2]);
  });

  it('adaptive (default): a lone request runs at once on an idle instance, never waiting out the delay', async () => {
    const r = runner();
    // An hour of delay and no timeout: only an eager start lets these resolve.
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 64, maxQueueDelayMs: 3_600_000, maxQueueSize: 100, timeoutMs: 0 });
    for (let i = 0; i < 5; i++) expect(Array.from((await b.submit(Float32Array.of(i, 0), 1)).output)).toEqual([2 * i]);
    expect(r.batches).toEqual([1, 1, 1, 1, 1]);
    expect(b.stats().delayMode).toBe('eager');
  });

  it('unbatched (maxBatchSize 1) never probes waiting, however long requests queue behind a batch', async () => {
    const r = runner(1);
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 1, maxQueueDelayMs: 5, maxQueueSize: 100, timeoutMs: 0 });
    // Eight clients in a closed loop for 15 policy windows (200 ms each): a batched queue would have probed by then.
    const until = performance.now() + 3000;
    const client = async () => {
      while (performance.now() < until) await b.submit(Float32Array.of(1, 1), 1);
    };
    await Promise.all(Array.from({ length: 8 }, client));
    expect(b.stats()).toMatchObject({ delayMode: 'eager', delayProbes: 0 });
    expect(b.stats().batchSizes).toEqual({ 1: b.stats().batches });
  });

  it('accumulates while every instance is busy; the next free instance takes what queued (two instances run two batches at once)', async () => {
    const gates: Array<() => void> = [];
    const batches: number[] = [];
    const run = async (x: Float32Array, rows: number) => {
      batches.push(rows);
      await new Promise<void>((open) => gates.push(open));
      return Float32Array.from({ length: rows }, (_, i) => x[2 * i]);
    };
    const b = new Batcher(run, 2, 1, { maxBatchSize: 8, maxQueueDelayMs: 3_600_000, maxQueueSize: 100, timeoutMs: 0 }, 2);
    const tick = () => new Promise((r) => setImmediate(r));
    const first = b.submit(Float32Array.of(0, 0), 1);
    await tick();
    const second = b.submit(Float32Array.of(1, 0), 1);
    await tick();
    expect(batches).toEqual([1, 1]); // both instances busy, neither waited for company
    const rest = Array.from({ length: 12 }, (_, i) => b.submit(Float32Array.of(2 + i, 0), 1));
    await tick();
    expect(batches).toEqual([1, 1]);
    expect(b.queued).toBe(12);
    gates.shift()!();
    await first;
    await tick();
    expect(batches).toEqual([1, 1, 8]);
    gates.shift()!();
    await second;
    await tick();
    expect(batches).toEqual([1, 1, 8, 4]);
    while (gates.length) gates.shift()!();
    expect((await Promise.all(rest)).map((x) => x.output[0])).toEqual(Array.from({ length: 12 }, (_, i) => 2 + i));
    expect(b.stats().parallel).toBe(2);
  });

  it('with batching off (maxBatchSize 1) runs every request alone', async () => {
    const r = runner();
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 100, timeoutMs: 5000 });
    await Promise.all(Array.from({ length: 5 }, () => b.submit(Float32Array.of(1, 2), 1)));
    expect(r.batches).toEqual([1, 1, 1, 1, 1]);
  });

  it('runs a request with more rows than maxBatchSize alone', async () => {
    const r = runner();
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 2, maxQueueDelayMs: 0, maxQueueSize: 100, timeoutMs: 5000 });
    const big = await b.submit(new Float32Array(10).fill(1), 5);
    expect(Array.from(big.output)).toEqual([4, 4, 4, 4, 4]);
    expect(r.batches).toEqual([5]);
  });

  it('answers 429 FL_ERR_SERVING_OVERLOADED at once when the queue is full, never hangs', async () => {
    const r = runner(30);
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 3, timeoutMs: 5000 });
    const all = Array.from({ length: 10 }, () => code(b.submit(Float32Array.of(1, 1), 1)));
    const codes = await Promise.all(all);
    expect(codes.filter((c) => c === 'FL_ERR_SERVING_OVERLOADED').length).toBeGreaterThanOrEqual(6);
    expect(codes.filter((c) => c === 'ok').length).toBeGreaterThanOrEqual(3);
    expect(b.stats().rejectedFull).toBe(codes.filter((c) => c === 'FL_ERR_SERVING_OVERLOADED').length);
    expect(new AppError('FL_ERR_SERVING_OVERLOADED').status).toBe(429);
  });

  it('times out requests still queued after timeoutMs (they never run)', async () => {
    const r = runner(60);
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 100, timeoutMs: 20 });
    const codes = await Promise.all(Array.from({ length: 4 }, () => code(b.submit(Float32Array.of(1, 1), 1))));
    expect(codes[0]).toBe('ok');
    expect(codes.slice(1)).toEqual(['FL_ERR_SERVING_TIMEOUT', 'FL_ERR_SERVING_TIMEOUT', 'FL_ERR_SERVING_TIMEOUT']);
    expect(r.batches).toEqual([1]);
    expect(b.stats().timedOut).toBe(3);
  });

  it('a shorter timeoutMs configured later applies to requests queued from then on, before older ones with the longer one', async () => {
    let release: () => void = () => undefined;
    const b = new Batcher(
      (_x, rows) => new Promise<Float32Array>((resolve) => (release = () => resolve(new Float32Array(rows)))),
      2,
      1,
      { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 100, timeoutMs: 60_000 },
    );
    const running = code(b.submit(Float32Array.of(1, 1), 1));
    await new Promise((r) => setImmediate(r)); // the first batch starts and holds the only instance
    const older = b.submit(Float32Array.of(1, 1), 1);
    let olderSettled = false;
    older.then(
      () => (olderSettled = true),
      () => (olderSettled = true),
    );
    b.configure({ maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 100, timeoutMs: 10 });
    expect(await code(b.submit(Float32Array.of(1, 1), 1))).toBe('FL_ERR_SERVING_TIMEOUT');
    expect(olderSettled).toBe(false);
    release();
    expect(await running).toBe('ok');
    await new Promise((r) => setImmediate(r));
    release();
    expect(await code(older)).toBe('ok');
    expect(b.stats().timedOut).toBe(1);
  });

  it('rejects every request of a batch whose runner fails, and keeps serving', async () => {
    let fail = true;
    const b = new Batcher(
      (x, rows) => {
        if (fail) throw new AppError('FL_ERR_INTERNAL');
        return new Float32Array(rows);
      },
      2,
      1,
      { maxBatchSize: 4, maxQueueDelayMs: 1, maxQueueSize: 10, timeoutMs: 1000 },
    );
    expect(await Promise.all([code(b.submit(new Float32Array(2), 1)), code(b.submit(new Float32Array(2), 1))])).toEqual(['FL_ERR_INTERNAL', 'FL_ERR_INTERNAL']);
    fail = false;
    expect(await code(b.submit(new Float32Array(2), 1))).toBe('ok');
  });

  it('after close rejects new requests, finishes queued ones, then reports drained', async () => {
    const r = runner(10);
    const b = new Batcher(r.run, 2, 1, { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 10, timeoutMs: 1000 });
    const queued = [b.submit(Float32Array.of(1, 1), 1), b.submit(Float32Array.of(1, 1), 1)];
    let drained = false;
    b.close(() => (drained = true));
    expect(await code(b.submit(Float32Array.of(1, 1), 1))).toBe('FL_ERR_SERVING_UNAVAILABLE');
    await Promise.all(queued);
    await new Promise((r) => setTimeout(r, 5));
    expect(drained).toBe(true);
  });
});

describe('Histogram and RateWindow', () => {
  it('answers percentiles within 4% of the exact ones', () => {
    const h = new Histogram();
    const xs = Array.from({ length: 10000 }, (_, i) => 0.05 + (i % 1000) * 0.1);
    xs.forEach((x) => h.record(x));
    const sorted = [...xs].sort((a, b) => a - b);
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = sorted[Math.ceil(q * sorted.length) - 1];
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThan(0.04);
    }
    expect(h.summary()).toMatchObject({ count: 10000, min: 0.05 });
    expect(new Histogram().summary().p99).toBe(0);
  });

  it('counts events per second over its window', () => {
    let now = 1_000_000;
    const r = new RateWindow(10, () => now);
    for (let s = 0; s < 20; s++) {
      r.add(5);
      now += 1000;
    }
    expect(r.perSecond()).toBeCloseTo(5, 5);
  });
});
