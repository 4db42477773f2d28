/**
 * Benchmark: size of the SDK's browser bundle, minified and gzip-compressed, with and without
 * TensorFlow.js.
 *
 *   node --import ./scripts/dev-loader.mjs bench/bundle-size.ts
 *
 * Bundles `import { FlotillaClient } from '@flotilla/client'` as a browser app would (esbuild,
 * platform browser, ESM, minified; the package's `browser` export of the compiled dist/, so run
 * `npm run build` first) twice: whole, and with every @tensorflow/* module left external (the SDK's
 * own code, socket.io-client and zod: what an app that already ships tfjs adds). Prints raw and
 * gzip (level 9) bytes; the baseline is the whole bundle, measured in the same run.
 */
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function sizes(external: string[]): Promise<{ raw: number; gzip: number; inputs: number }> {
  const r = await build({
    stdin: { contents: "export { FlotillaClient, setWasmPaths } from '@flotilla/client';", resolveDir: ROOT, loader: 'js' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    metafile: true,
    external,
    logLevel: 'silent',
  });
  const code = r.outputFiles[0].contents;
  return { raw: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength, inputs: Object.keys(r.metafile.inputs).length };
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const whole = await sizes([]);
const sdkOnly = await sizes(['@tensorflow/*']);
console.log('browser bundle of @flotilla/client (esbuild, minified)');
console.log(`  with tfjs     ${kib(whole.raw).padStart(11)} raw  ${kib(whole.gzip).padStart(10)} gzip  (${whole.inputs} modules)`);
console.log(`  without tfjs  ${kib(sdkOnly.raw).padStart(11)} raw  ${kib(sdkOnly.gzip).padStart(10)} gzip  (${sdkOnly.inputs} modules)`);
console.log(`  ratio without / with (gzip): ${(sdkOnly.gzip / whole.gzip).toFixed(3)}`);
