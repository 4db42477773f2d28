import { afterEach, describe, expect, it, vi } from 'vitest';
import { PartialExchange } from '../../server/src/cluster/partial-exchange.js';
import type { RedisClient } from '../../server/src/cluster/redis-link.js';

describe('PartialExchange.gather', () => {
  afterEach(() => vi.useRealTimers());

  it('rejects with the publish error when Redis is down, and its timeout later leaves no unhandled rejection (which would end the node)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const stats = { partialsSent: 0, partialBytesSent: 0, partialsReceived: 0, partialBytesReceived: 0 };
      // The Redis client is never reached on this path: the publish of `close` fails first.
      const ex = new PartialExchange({} as RedisClient, 'n0', 1000, stats, async () => {
        throw new Error('The client is offline');
      });
      ex.opened('t');
      ex.reporter('t', 'n1');
      await expect(ex.gather('t', 7)).rejects.toThrow('The client is offline');
      vi.advanceTimersByTime(1001); // the gather's own timeout fires and rejects its wait
      // Node reports unhandled rejections after the microtask queue drains: let a macrotask pass.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
