// The files the browser device page needs, and a fastify plugin-like helper that serves them.
// The SDK is bundled for the browser with esbuild (one ES module, no Node built-ins) and tfjs's wasm
// binaries are served from the same origin, so the page never loads anything from a CDN.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const HERE = fileURLToPath(new URL('.', import.meta.url));
export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/**
 * Builds the page's assets: path (relative to the page) -> { type, body }.
 * `conditions`: extra package export conditions for the bundle (the repository's tests pass
 * '@flotilla/source' to bundle the SDK from its sources).
 */
export async function browserDeviceAssets({ conditions = [] } = {}) {
  const bundle = await build({
    stdin: { contents: "export * from '@flotilla/client';", resolveDir: HERE, loader: 'js', sourcefile: 'flotilla-client.js' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    conditions,
    write: false,
    logLevel: 'silent',
  });
  // The wasm backend is a dependency of @flotilla/model; resolve it the way the bundle did.
  const require = createRequire(join(HERE, 'package.json'));
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  const assets = new Map([
    ['', { type: 'text/html; charset=utf-8', body: await readFile(join(HERE, 'index.html')) }],
    ['flotilla-client.js', { type: 'text/javascript; charset=utf-8', body: Buffer.from(bundle.outputFiles[0].contents) }],
  ]);
  for (const f of WASM_FILES) assets.set(`wasm/${f}`, { type: 'application/wasm', body: await readFile(join(wasmDir, f)) });
  return assets;
}

/**
 * Serves the page under `prefix` (default '/device/') on a fastify instance, e.g. a Flotilla
 * coordinator built with buildApp() before it listens: the page, its SDK bundle and the wasm
 * binaries then share the coordinator's origin (socket.io and the weights download need no CORS).
 */
export async function mountBrowserDevice(app, { prefix = '/device/', conditions } = {}) {
  const assets = await browserDeviceAssets({ conditions });
  app.get(prefix.slice(0, -1), (req, reply) => reply.redirect(prefix + (req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '')));
  for (const [path, a] of assets) app.get(prefix + path, (_req, reply) => reply.type(a.type).header('cache-control', 'no-cache').send(a.body));
  return assets;
}
