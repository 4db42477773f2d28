import { describe, expect, it } from 'vitest';
import { DelayPolicy } from '../../server/src/serving/delay-policy.js';

/** Feed `windows` windows of 200 ms in which each mode serves `rowsPerWindow[mode]` rows. */
function drive(p: DelayPolicy, windows: number, rowsPerWindow: { eager: number; wait: number }, queuedBehind: number, t0 = 0): { modes: string[]; t: number } {
  const modes: string[] = [];
  let t = t0;
  for (let w = 0; w < windows; w++) {
    modes.push(p.mode);
    // Ten batches per window, each as large as the mode in force serves.
    for (let i = 1; i <= 10; i++) p.served(rowsPerWindow[p.mode] / 10, queuedBehind, t + i * 20);
    t += 200;
  }
  return { modes, t };
}

describe('DelayPolicy', () => {
  it('starts eager and never probes waiting without requests queued behind a batch (a lone client never pays the delay)', () => {
    const p = new DelayPolicy({ windowMs: 200, probeEvery: 3 });
    const { modes } = drive(p, 30, { eager: 100, wait: 1000 }, 0);
    expect(new Set(modes)).toEqual(new Set(['eager']));
  });

  it('probes waiting under contention, keeps it only when it served >= gain x the rows per second, and probes back later', () => {
    const better = new DelayPolicy({ windowMs: 200, probeEvery: 3, gain: 1.1 });
    const up = drive(better, 12, { eager: 100, wait: 200 }, 5);
    expect(up.modes.slice(0, 3)).toEqual(['eager', 'eager', 'eager']);
    expect(better.switches).toBe(1);
    // Once switched, only single-window probes of eager interrupt waiting.
    expect(up.modes.slice(6).filter((m) => m === 'eager').length).toBeLessThanOrEqual(2);
    // Load changes so that eager is better: a later eager probe wins and it moves back.
    const down = drive(better, 12, { eager: 300, wait: 200 }, 5, up.t);
    expect(better.switches).toBe(2);
    expect(down.modes.slice(6).filter((m) => m === 'wait').length).toBeLessThanOrEqual(2);

    const worse = new DelayPolicy({ windowMs: 200, probeEvery: 3, gain: 1.1 });
    const { modes } = drive(worse, 12, { eager: 100, wait: 105 }, 5);
    expect(modes.filter((m) => m === 'wait').length).toBeLessThanOrEqual(3); // single-window probes only
    expect(worse.switches).toBe(0);
  });

  it('leaves waiting at once when a waiting window gathered next to nothing, and after an idle gap', () => {
    /** Drive a contended load where waiting wins until the policy is waiting (not in an eager probe). */
    const untilWaiting = (p: DelayPolicy): number => {
      let t = drive(p, 12, { eager: 100, wait: 200 }, 5).t;
      for (let i = 0; i < 30 && (p.mode !== 'wait' || p.switches === 0); i++) t = drive(p, 1, { eager: 100, wait: 200 }, 5, t).t;
      expect(p.mode).toBe('wait');
      return t;
    };
    // probeEvery 10: a probe of eager cannot explain a return within the next 2 windows.
    const p = new DelayPolicy({ windowMs: 200, probeEvery: 10, gain: 1.1 });
    const t = untilWaiting(p);
    // The load falls to one client: each waited batch holds one row, nothing queues behind it.
    // (The first window still holds one batch of the busy load: windows close on a batch.)
    const lone = drive(p, 3, { eager: 1, wait: 10 }, 0, t);
    expect(lone.modes).toEqual(['wait', 'wait', 'eager']);
    expect(p.mode).toBe('eager');

    const q = new DelayPolicy({ windowMs: 200, probeEvery: 10, gain: 1.1 });
    untilWaiting(q);
    q.idle();
    expect(q.mode).toBe('eager');
  });

  it('probes waiting ever more rarely while it keeps losing under a steady load, and at the base rate again once the load changes or after an idle gap', () => {
    const p = new DelayPolicy({ windowMs: 200, probeEvery: 3, maxProbeEvery: 24, gain: 1.1 });
    // Steady contended load on which waiting serves no more than eager: every probe loses.
    const steady = drive(p, 120, { eager: 100, wait: 100 }, 5);
    const waits = steady.modes.flatMap((m, i) => (m === 'wait' ? [i] : []));
    // Without backoff a probe every 4 windows (3 eager + 1 probe): 30 in 120 windows.
    expect(waits.length).toBeGreaterThanOrEqual(4);
    expect(waits.length).toBeLessThanOrEqual(8);
    expect(p.switches).toBe(0);
    const gaps = waits.slice(1).map((w, i) => w - waits[i]);
    // Gaps double (3+1, 6+1, 12+1, then capped at 24+1).
    expect(gaps.slice(0, 3)).toEqual([7, 13, 25]);
    expect(Math.max(...gaps)).toBe(25);

    // The load changes (eager now serves 2x the rows per second): waiting is probed at the base interval again.
    const changed = drive(p, 12, { eager: 200, wait: 200 }, 5, steady.t);
    const first = changed.modes.indexOf('wait');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThanOrEqual(4);

    // An idle gap resets it as well.
    const q = new DelayPolicy({ windowMs: 200, probeEvery: 3, maxProbeEvery: 24 });
    const t = drive(q, 60, { eager: 100, wait: 100 }, 5).t;
    q.idle();
    const after = drive(q, 8, { eager: 100, wait: 100 }, 5, t + 5000);
    // (The first window after the gap opens at its first batch, so it closes one batch later.)
    expect(after.modes.indexOf('wait')).toBeGreaterThanOrEqual(3);
    expect(after.modes.indexOf('wait')).toBeLessThanOrEqual(4);
  });

  it('still finds waiting when it pays after backing off, then stays with it', () => {
    const p = new DelayPolicy({ windowMs: 200, probeEvery: 3, maxProbeEvery: 24, gain: 1.1 });
    const t = drive(p, 60, { eager: 100, wait: 100 }, 5).t;
    // Waiting starts to pay (2x) at the same eager rate: the next probe (at most 25 windows away) finds it.
    const later = drive(p, 40, { eager: 100, wait: 200 }, 5, t);
    expect(p.switches).toBe(1);
    expect(later.modes.slice(-5).filter((m) => m === 'wait').length).toBeGreaterThanOrEqual(4);
  });
});
