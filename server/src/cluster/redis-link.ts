import { createClient } from 'redis';
import type { CoordinatorLogger } from '../coordinator/deps.js';

export type RedisClient = ReturnType<typeof createClient>;

/**
 * The Redis connections of one cluster node: `cmd` for commands (fails fast while Redis is down,
 * so a lease renewal never waits in a queue past its lease), `pub` and `sub` for pub/sub (sub
 * re-subscribes by itself after a reconnect), `adapterPub` and `adapterSub` for socket.io's
 * adapter. Every client reconnects forever with a short back-off: a Redis restart needs no manual
 * step.
 */
export interface RedisLink {
  cmd: RedisClient;
  pub: RedisClient;
  sub: RedisClient;
  /**
   * `pub` as socket.io's Redis adapter may use it: the adapter calls `publish` without handling
   * its promise, and a publish caught by a Redis restart rejects; unhandled, that would end the
   * process. Here a failed publish is logged and resolves to 0 receivers (the event is lost, as
   * on any broken connection; rounds time out and retry).
   */
  adapterPub: RedisClient;
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
    adapterPub: publishFailuresLogged(pub, logger),
    adapterSub,
    close: async () => {
      await Promise.allSettled([cmd, pub, sub, adapterSub].map((c) => (c.isOpen ? c.quit() : Promise.resolve())));
    },
  };
}

function publishFailuresLogged(client: RedisClient, logger: CoordinatorLogger): RedisClient {
  const publish = (channel: string, message: string | Buffer) =>
    client.publish(channel, message).catch((err: Error) => {
      logger.warn({ err: err.message }, 'cluster: socket.io adapter message lost (redis down?)');
      return 0;
    });
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'publish' || prop === 'PUBLISH') return publish;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
