import type { Store } from '../store/store.js';

/** Store writes that serving caches on other nodes depend on (versions, aliases, deployments). */
const SERVING_WRITES = new Set<string | symbol>(['commitRound', 'putVersion', 'setAlias', 'deleteAlias', 'setArchived', 'createDeployment', 'updateDeployment', 'deleteDeployment']);

/**
 * Cluster mode: the store as seen by this node, announcing each successful serving-relevant write
 * (`announce(methodName)`) so that the other nodes re-sync their serving caches through Redis
 * pub/sub instead of polling (docs/cluster.md). Reads and other writes pass through unchanged.
 */
export function announceServingWrites(store: Store, announce: (what: string) => void): Store {
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...args: unknown[]) => unknown;
      if (!SERVING_WRITES.has(prop)) return fn.bind(target);
      return async (...args: unknown[]) => {
        const r = await fn.apply(target, args);
        announce(String(prop));
        return r;
      };
    },
  });
}
