import { describe, expect, it } from 'vitest';
import { f32Codec, TaskPlanSchema, type FitReport } from '@flotilla/protocol';
import { ActiveRound } from '../../server/src/coordinator/active-round.js';
import { createStrategy } from '../../server/src/fl/strategies/index.js';
import { BLOCK } from '../../server/src/fl/fold-kernel.js';
import { AppError } from '../../server/src/errors.js';
import type { RoundRecord } from '../../server/src/store/records.js';

// The report path's accept on a model longer than several kernel blocks (fold-kernel.ts): a refused
// report, wherever its bad value sits, leaves the round's aggregate bit for bit as it was.
const P = 3 * BLOCK + 5;
const plan = TaskPlanSchema.parse({ clientsPerRound: 8 });
const base = Float32Array.from({ length: P }, (_, i) => Math.cos(i) * 0.1);
base[3 * BLOCK + 2] = 3e38; // near float32 max: a delta of 1e38 there leaves the range

function round(ids: string[]): ActiveRound {
  const strategy = createStrategy(plan);
  const record: RoundRecord = {
    taskId: 't', round: 1, state: 'training', baseVersion: 1, selected: ids, reported: [], rejected: [], dropped: [],
    startedAt: 0, deadline: 0, trainMetrics: {}, evalMetrics: {}, centralMetrics: {}, bytesUp: 0, bytesDown: 0,
  } as RoundRecord;
  const range = { first: (d: Float32Array) => strategy.previewOutOfRange!(d, base), headroom: strategy.previewHeadroom!(base) };
  return new ActiveRound(record, strategy.beginFit(1, P), P, plan, 8, null, range);
}

const report = (delta: Float32Array, numExamples = 5): FitReport => ({ taskId: 't', round: 1, numExamples, metrics: { loss: 1 }, codec: 'f32', delta: f32Codec.encode(delta) });
const good = (k: number) => Float32Array.from({ length: P }, (_, i) => Math.sin(i + k) * 1e-3);
const sumOf = (r: ActiveRound) => Array.from((r.aggregator as unknown as { mean: { rawSum: Float64Array } }).mean.rawSum);

describe('ActiveRound.accept on a multi-block model', () => {
  it('refuses non-finite and out-of-range reports with their codes and leaves the aggregate unchanged', () => {
    const bad: Array<[string, number, number, string]> = [
      ['nan-last', P - 1, NaN, 'FL_ERR_REPORT_NON_FINITE'],
      ['inf-first', 0, Infinity, 'FL_ERR_REPORT_NON_FINITE'],
      ['ninf-mid', BLOCK + 7, -Infinity, 'FL_ERR_REPORT_NON_FINITE'],
      ['out-of-range-last-block', 3 * BLOCK + 2, 1e38, 'FL_ERR_REPORT_OUT_OF_RANGE'],
    ];
    const r = round(['a', 'b', ...bad.map((b) => b[0])]);
    const ref = round(['a', 'b']);
    r.accept('a', report(good(1), 3), true);
    ref.accept('a', report(good(1), 3), true);
    const before = sumOf(r);
    for (const [id, at, v, code] of bad) {
      const d = good(2);
      d[at] = v;
      let caught: unknown;
      try {
        r.accept(id, report(d), true);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(AppError);
      expect((caught as AppError).code).toBe(code);
      expect(sumOf(r)).toEqual(before);
      expect(r.aggregator.count).toBe(1);
      expect(r.reported.has(id)).toBe(false);
    }
    expect(r.record.rejected.map((x) => x.code)).toEqual(bad.map((b) => b[3]));
    r.accept('b', report(good(3), 7), true);
    ref.accept('b', report(good(3), 7), true);
    // The same as a round that never saw the refused reports, bit for bit.
    expect(sumOf(r)).toEqual(sumOf(ref));
    expect(r.aggregator.totalExamples).toBe(10);
  });
});
