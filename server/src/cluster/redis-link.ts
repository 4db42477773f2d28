import { createClient } from 'redis';
import type { CoordinatorLogger } from '../coordinator/deps.js';

export type RedisClient = ReturnType<typeof createClient>;

/**
 * The Redis connections of one cluster node: `cmd` for commands (fails fast while Redis is down,
 * so a lease renewal never waits in a queue past its lease), `pub` and `sub` for pub/sub (sub
 * re-subscribes by itself after a reconnect), `adapterSub` for socket.io's adapter. Every client
 * reconnects forever with a short back-off: a Redis restart needs no manual step.
 */
export interface RedisLink {
  cmd: RedisClient;
  pub: RedisClient;
  sub: RedisClient;
  adapterSub: RedisClient;
  close(): Promise<void>;
}

export async function openRedisLink(url: string, logger: CoordinatorLogger): Promise<RedisLink> {
  const make = (name: string, offlineQueue: boolean) => {
    const c = createClient({ url, disableOfflineQueue: !offlineQueue, pingInterval: 1000, socket: { connectTimeout: 2000, reconnectStrategy: (n: number) => Math.min(50 * (n + 1), 500) } });
    let down = false;
    c.on('error', (err: Error) => {
      if (!down) logger.warn({ err: err.message, client: name }, 'cluster: redis connection lost; reconnecting');
      down = true;
    });
    c.on('ready', () => {
      if (down) logger.info({ client: name }, 'cluster: redis reconnected');
      down = false;
    });
    return c;
  };
  const cmd = make('cmd', false);
  const pub = make('pub', false);
  const sub = make('sub', true);
  const adapterSub = make('adapter', true);
  await Promise.all([cmd.connect(), pub.connect(), sub.connect(), adapterSub.connect()]);
  return {
    cmd,
    pub,
    sub,
    adapterSub,
    close: async () => {
      await Promise.allSettled([cmd, pub, sub, adapterSub].map((c) => (c.isOpen ? c.quit() : Promise.resolve())));
    },
  };
}
