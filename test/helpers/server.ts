import { buildApp, type AppOptions, type FlotillaApp } from '@flotilla/server';

/** A real server on an ephemeral loopback port. */
export async function startServer(opts: AppOptions = {}): Promise<{ app: FlotillaApp; url: string }> {
  const app = await buildApp(opts);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (!addr || typeof addr !== 'object') throw new Error('no address');
  return { app, url: `http://127.0.0.1:${addr.port}` };
}

/** Resolves with the first value `event` emits for which `pred` holds. */
export function nextEvent<T>(emitter: { on(e: string, f: (x: T) => void): unknown; off(e: string, f: (x: T) => void): unknown }, event: string, pred: (x: T) => boolean = () => true, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, fn);
      reject(new Error(`timed out waiting for ${event}`));
    }, timeoutMs);
    const fn = (x: T) => {
      if (!pred(x)) return;
      clearTimeout(timer);
      emitter.off(event, fn);
      resolve(x);
    };
    emitter.on(event, fn);
  });
}
