import { createHash } from 'node:crypto';
import { LocalTrainer, resolveBackend, type Dataset, type Fetcher, type LoadedModel, type Logger } from '@flotilla/client';
import { layersModelJson, type LossName, type MetricName, type ModelSpec } from '@flotilla/protocol';
import { bytesToFloat32 } from '@flotilla/protocol';
import { fetchWithRetry, type RetryOptions } from './coordinator-fetch.js';

/**
 * Central (server-side) test-set evaluation for the simulator. In-process mode hands
 * `createCentralEvaluator` to the server (buildApp's centralEvaluator); --url mode uses
 * `RemoteVersionEvaluator`, which downloads each committed version over HTTP and evaluates it
 * here. Both use one LocalTrainer: one tfjs model per topology, weights swapped per call.
 */
export interface TestSet {
  x: Float32Array;
  y: Uint8Array | Float32Array;
  inputSize: number;
  numClasses: number;
  labelSize?: number;
  labels?: 'classIds' | 'values';
  /** The task's loss and metrics (default categoricalCrossentropy and accuracy). */
  loss?: LossName;
  metrics?: MetricName[];
}

const EVAL_BATCH = 1000;

function testDataset(t: TestSet): Dataset {
  return { x: t.x, y: t.y, inputSize: t.inputSize, numClasses: t.numClasses, labelSize: t.labelSize ?? 1, labels: t.labels ?? 'classIds' };
}

/** (weights, spec) -> { accuracy, loss } on the whole test set. */
export function createCentralEvaluator(test: TestSet, logger?: Logger): (weights: Float32Array, spec: ModelSpec) => Promise<Record<string, number>> {
  const trainer = new LocalTrainer({ logger });
  const data = testDataset(test);
  return async (weights, spec) => {
    await resolveBackend(logger);
    const key = `central://${createHash('sha256').update(JSON.stringify(spec.topology)).digest('hex').slice(0, 16)}`;
    const fetcher: Fetcher = {
      json: async () => layersModelJson(spec, 'weights.bin'),
      bytes: async () => {
        throw new Error('central evaluator fetches no bytes');
      },
    };
    const loaded = await trainer.load(key, fetcher);
    const out = await trainer.evaluate(loaded, weights, data, EVAL_BATCH, { loss: test.loss, metrics: test.metrics });
    return out.metrics;
  };
}

/** Evaluates versions of a model held by a remote coordinator, fetched over its registry routes. */
export class RemoteVersionEvaluator {
  private readonly trainer: LocalTrainer;
  private loaded: Promise<LoadedModel> | null = null;
  private readonly data: Dataset;

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly model: string,
    test: TestSet,
    logger?: Logger,
    /** Waiting out an unreachable coordinator (see coordinator-fetch.ts). */
    private readonly retry: RetryOptions = {},
  ) {
    this.trainer = new LocalTrainer({ logger });
    this.data = testDataset(test);
  }

  private async get(path: string): Promise<Response> {
    const res = await fetchWithRetry(new URL(path, this.baseUrl), { headers: { authorization: `Bearer ${this.token}` } }, this.retry);
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
    return res;
  }

  private paths(version: number): { modelJson: string; weights: string } {
    const base = `/api/v1/models/${encodeURIComponent(this.model)}/versions/${version}`;
    return { modelJson: `${base}/model.json`, weights: `${base}/weights.bin` };
  }

  /** Accuracy and loss of `version` on the test set, plus the bytes downloaded for it. */
  async evaluate(version: number): Promise<{ accuracy: number; loss: number; bytes: number }> {
    await resolveBackend();
    const p = this.paths(version);
    if (!this.loaded) {
      // Every version of one task shares the topology: load it once, from the first version seen.
      const fetcher: Fetcher = { json: async (u) => (await this.get(u)).json(), bytes: async (u) => new Uint8Array(await (await this.get(u)).arrayBuffer()) };
      this.loaded = this.trainer.load(`remote://${this.model}`, { ...fetcher, json: () => fetcher.json(p.modelJson) });
      this.loaded.catch(() => (this.loaded = null));
    }
    const loaded = await this.loaded;
    const bytes = new Uint8Array(await (await this.get(p.weights)).arrayBuffer());
    const out = await this.trainer.evaluate(loaded, bytesToFloat32(bytes), this.data, EVAL_BATCH);
    return { accuracy: out.metrics.accuracy, loss: out.metrics.loss, bytes: bytes.byteLength };
  }
}
