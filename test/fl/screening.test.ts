import { describe, expect, it } from 'vitest';
import { NormScreen, ScreeningOptionsSchema, screenNorm, screeningThreshold } from '../../server/src/fl/screening.js';
import { l2Norm } from '../../server/src/fl/update-checks.js';

const opts = (o: Record<string, unknown> = {}) => ScreeningOptionsSchema.parse({ multiplier: 3, window: 5, minHistory: 3, ...o });
const vec = (norm: number, n = 4) => new Float32Array(n).fill(norm / Math.sqrt(n));

describe('update screening by norm', () => {
  it('accepts everything during warm-up unless maxNorm applies', () => {
    expect(screenNorm(1e6, [1, 1], opts()).verdict).toBe('accept');
    expect(screenNorm(1e6, [1, 1], opts({ maxNorm: 10 }))).toEqual({ verdict: 'reject', norm: 1e6, threshold: 10 });
    expect(screeningThreshold([], opts())).toBe(Infinity);
  });

  it('thresholds at multiplier x median of the recent window (hand-computed)', () => {
    // last 5 of [100, 1, 2, 3, 4, 10] -> [1, 2, 3, 4, 10], median 3 -> threshold 9
    const h = [100, 1, 2, 3, 4, 10];
    expect(screeningThreshold(h, opts())).toBe(9);
    expect(screenNorm(9, h, opts()).verdict).toBe('accept');
    expect(screenNorm(9.01, h, opts()).verdict).toBe('reject');
    expect(screenNorm(9.01, h, opts({ action: 'clip' })).verdict).toBe('clip');
    expect(screenNorm(NaN, h, opts({ action: 'clip' })).verdict).toBe('reject');
    expect(h).toEqual([100, 1, 2, 3, 4, 10]);
  });

  it('rejects a scaled attack, and rejected norms do not move the median', () => {
    const s = new NormScreen(opts());
    for (const n of [1, 1.2, 0.8]) expect(s.screen(vec(n)).verdict).toBe('accept');
    for (let i = 0; i < 20; i++) expect(s.screen(vec(10)).verdict).toBe('reject');
    expect(s.recentNorms.map((x) => Number(x.toFixed(5)))).toEqual([1, 1.2, 0.8]);
    expect(s.screen(vec(2.9)).verdict).toBe('accept');
  });

  it('clips to the threshold in place and records the threshold', () => {
    const s = new NormScreen(opts({ action: 'clip' }));
    for (const n of [2, 2, 2]) s.screen(vec(n));
    const big = vec(60);
    const d = s.screen(big);
    expect(d.verdict).toBe('clip');
    expect(d.threshold).toBeCloseTo(6, 5);
    expect(l2Norm(big)).toBeCloseTo(6, 5);
    expect(s.recentNorms[3]).toBeCloseTo(6, 5);
  });

  it('forgets norms that leave the window, and resumes from exported state', () => {
    const s = new NormScreen(opts());
    for (let i = 0; i < 8; i++) s.screen(vec(1 + i * 0.1));
    expect(s.recentNorms.length).toBe(5);
    const t = new NormScreen(opts());
    t.importState(JSON.parse(JSON.stringify(s.exportState())));
    expect(t.recentNorms).toEqual(s.recentNorms);
    expect(() => t.importState([1, -1])).toThrow(RangeError);
  });

  it('validates its options', () => {
    expect(() => ScreeningOptionsSchema.parse({ multiplier: 1 })).toThrow();
    expect(() => ScreeningOptionsSchema.parse({ window: 3, minHistory: 4 })).toThrow();
    expect(ScreeningOptionsSchema.parse({})).toEqual({ action: 'reject', multiplier: 3, window: 100, minHistory: 10 });
  });
});
