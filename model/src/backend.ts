import * as tf from '@tensorflow/tfjs';
import type { Logger } from './logger.js';

/**
 * Backend choice. Node: tfjs-node-gpu > tfjs-node > wasm > cpu; browser: webgl > wasm > cpu.
 * `resolveBackend` runs once per process (later calls return the same promise) and logs the
 * choice once. Node-only modules are imported by name at run time so bundlers and the browser
 * entry never pull them in.
 */
export type Platform = 'node' | 'browser';

let resolved: Promise<string> | null = null;
let wasmPaths: string | Record<string, string> | undefined;

/**
 * Where the wasm backend fetches its binaries (tfjs-backend-wasm.wasm, -simd.wasm,
 * -threaded-simd.wasm): a URL prefix ending in '/', or a map from file name to URL. Browsers call
 * it before the backend is resolved (before `start()`) so that the binaries come from the app's
 * own server; without it tfjs looks next to the running script. No effect once wasm is loaded.
 */
export function setWasmPaths(paths: string | Record<string, string>): void {
  wasmPaths = paths;
}

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(/* @vite-ignore */ name);
    return true;
  } catch {
    return false;
  }
}

async function trySet(name: string): Promise<boolean> {
  try {
    if (!(name in tf.engine().registryFactory)) return false;
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function choose(platform: Platform, prefer?: string): Promise<string> {
  if (prefer && (await trySet(prefer))) return prefer;
  if (platform === 'node') {
    // tfjs-node(-gpu) register the 'tensorflow' backend on import; both are optional dependencies.
    if ((await tryImport('@tensorflow/tfjs-node-gpu')) || (await tryImport('@tensorflow/tfjs-node'))) {
      if (await trySet('tensorflow')) return 'tensorflow';
    }
  } else if (await trySet('webgl')) {
    return 'webgl';
  }
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (wasmPaths !== undefined) wasm.setWasmPaths(wasmPaths);
  if (await trySet('wasm')) return 'wasm';
  await tf.setBackend('cpu');
  return 'cpu';
}

export function resolveBackend(platform: Platform, logger?: Logger, prefer?: string): Promise<string> {
  if (!resolved) {
    resolved = choose(platform, prefer).then(async (name) => {
      await tf.ready();
      logger?.info(`[flotilla] tfjs backend: ${name}`);
      return name;
    });
  }
  return resolved;
}

/** Backends without Conv2DBackpropFilter cannot train CNNs; callers fall back to cpu for those. */
export async function ensureTrainableBackend(hasConv: boolean, logger?: Logger): Promise<void> {
  if (hasConv && tf.getBackend() === 'wasm') {
    await tf.setBackend('cpu');
    await tf.ready();
    logger?.warn('[flotilla] wasm backend cannot train convolutions; using cpu for this model');
  }
}
