import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

/**
 * The browser entry must bundle for a browser with nothing from Node: esbuild with
 * platform 'browser' fails on any node: builtin or Node-only module reached from it.
 */
describe('browser entry', () => {
  it('bundles for the browser without Node modules', async () => {
    const entry = fileURLToPath(new URL('../../client-sdk/src/browser.ts', import.meta.url));
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      external: ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
    });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs.some((p) => p.includes('socket.io-client'))).toBe(true);
    expect(inputs.filter((p) => /^node:|\/node_modules\/(ws|bufferutil|utf-8-validate)\//.test(p))).toEqual([]);
    expect(inputs.filter((p) => /client-sdk\/src\/index\.ts$/.test(p))).toEqual([]);
  }, 120_000);
});
