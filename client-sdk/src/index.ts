/** @flotilla/client, Node entry. */
import { resolveBackend as resolve } from '@flotilla/model';
import type { Logger } from '@flotilla/model';
import { BaseClient } from './client.js';

/** A device client that resolves the best tfjs backend for this platform before connecting. */
export class FlotillaClient extends BaseClient {
  override async start(): Promise<void> {
    const backend = await resolve('node', this.logger);
    if (!this.opts.backend) this.opts.backend = backend;
    return super.start();
  }
}

export { BaseClient, ClientError, type ClientOptions, type ClientHooks, type ClientEvents, type FitEvent } from './client.js';
export { loadModel, MemoryModelCache, type LoadModelOptions, type LoadedRegistryModel, type ModelCacheStore, type CachedResponse, type ModelVariant } from './model-loader.js';
export { LocalTrainer, type Fetcher, type FitOutput, type EvalOutput, type LoadedModel, type CustomTrain, type TrainContext } from './trainer.js';
export { type Dataset, type DataProvider, type LocalData, type TensorData, type Example, type LabelKind, datasetSize, gatherRows } from './data.js';
export { type Logger, silentLogger, setWasmPaths } from '@flotilla/model';
export * as protocol from '@flotilla/protocol';

/** Pick the best tfjs backend for Node (tfjs-node-gpu > tfjs-node > wasm > cpu); logs once. */
export function resolveBackend(logger?: Logger, prefer?: string): Promise<string> {
  return resolve('node', logger, prefer);
}
