import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

/**
 * Which proxies to believe about the client address, with fastify's `trustProxy` semantics:
 * false (default) uses the socket's peer address; true trusts every hop of X-Forwarded-For;
 * a number trusts that many hops; a string (comma-separated) or an array lists the proxy
 * addresses or CIDR ranges to trust ('loopback', 'uniquelocal' and 'linklocal' name ranges).
 */
export type TrustProxy = boolean | number | string | string[];

/** The trust function proxy-addr takes (and fastify's `trustProxy` accepts), built as fastify builds it from the same option. */
export function trustFunction(t: TrustProxy): (addr: string, i: number) => boolean {
  if (t === true) return () => true;
  if (typeof t === 'number') return (_a, i) => i < t;
  if (typeof t === 'string') return proxyAddr.compile(t.split(',').map((x) => x.trim()));
  return proxyAddr.compile(t as string[]);
}

/**
 * Client address of a raw HTTP request (the socket.io handshake), the same one fastify reports as
 * `request.ip` for the same `trustProxy`: REST calls and device handshakes then share one
 * failure throttle per client.
 */
export function clientAddressResolver(t: TrustProxy | undefined): (req: IncomingMessage) => string {
  if (t === undefined || t === false) return (req) => req.socket.remoteAddress ?? 'unknown';
  const trust = trustFunction(t);
  return (req) => proxyAddr(req, trust);
}
