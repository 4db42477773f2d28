import { describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../server/src/auth/failure-throttle.js';

/** The one failure throttle shared by REST guards and device handshakes (server/src/auth/failure-throttle.ts). */
describe('failure throttle', () => {
  it('allows max failures per address and window, then names the seconds left; a new window starts afresh', () => {
    let now = 1_000_000;
    const t = new FailureThrottle({ max: 3, windowMs: 60_000, now: () => now });
    expect([t.fail('a'), t.fail('a'), t.fail('a')]).toEqual([null, null, null]);
    expect(t.fail('a')).toEqual({ retryAfterSeconds: 60 });
    expect(t.fail('b')).toBeNull(); // per address
    now += 30_500;
    expect(t.fail('a')).toEqual({ retryAfterSeconds: 30 });
    now += 30_000;
    expect(t.fail('a')).toBeNull();
  });

  it('keeps at most maxAddresses windows, dropping expired ones first, then the oldest', () => {
    let now = 0;
    const t = new FailureThrottle({ max: 1, windowMs: 1000, maxAddresses: 100, now: () => now });
    for (let i = 0; i < 100; i++) t.fail(`old-${i}`);
    now = 2000;
    for (let i = 0; i < 250; i++) t.fail(`new-${i}`);
    expect(t.size).toBeLessThanOrEqual(100);
    // The newest addresses are still tracked: their second failure is over budget.
    expect(t.fail('new-249')).not.toBeNull();
  });
});
