import * as tf from '@tensorflow/tfjs';
import type { ClientPlan, LayersModelJson, LossName, MetricName } from '@flotilla/protocol';
import { AppError, buildManifest, splitFlat, type WeightManifest } from '@flotilla/protocol';
import { ensureTrainableBackend, readFlatWeights, setFlatWeights, travelFlags } from '@flotilla/model';
import type { Dataset, LocalData, TensorData } from './data.js';
import { datasetSize } from './data.js';
import { isStreamed, modelIO, toBatches, toTensors } from './local-data.js';
import { silentLogger, type Logger } from '@flotilla/model';

export interface LoadedModel {
  model: tf.LayersModel;
  /** Full manifest (model.weights order); entries with `trainable: false` are frozen and never reported. */
  manifest: WeightManifest;
  /** Training it needs Conv2DBackpropFilter (not in the wasm backend): a trainable layer is a convolution. */
  hasConv: boolean;
}

export interface FitOutput {
  /** w_local - w_global over the trainable vector (protocol/src/tensor/trainable.ts). */
  delta: Float32Array;
  numExamples: number;
  metrics: Record<string, number>;
  trainMs: number;
}

export interface EvalOutput {
  numExamples: number;
  metrics: Record<string, number>;
}

/** What a custom training loop gets besides the model and the data: the round's plan and a stop signal. */
export type TrainContext = ClientPlan & {
  /** True once the round is over (cancelled or superseded): stop early, what was trained so far is discarded. */
  shouldStop(): boolean;
};

/**
 * A device app's own training loop. It receives the model holding the global weights (frozen
 * layers have trainable false), trains it in place, and may return the number of examples it used
 * (required when the data is not in memory) and metrics to report. The SDK does the rest: the
 * delta, clipping, codec, report and heartbeats.
 */
export type CustomTrain = (model: tf.LayersModel, data: LocalData, plan: TrainContext) => Promise<{ numExamples?: number; metrics?: Record<string, number> } | void>;

const HISTORY_NAMES: Record<string, string> = { acc: 'accuracy', meanAbsoluteError: 'mae', meanSquaredError: 'mse' };

/** tfjs metric identifiers for the plan's metric names. */
function tfMetrics(metrics: readonly MetricName[]): Array<string | ((y: tf.Tensor, p: tf.Tensor) => tf.Tensor)> {
  return metrics.map((m) => (m === 'precision' ? tf.metrics.precision : m === 'recall' ? tf.metrics.recall : m));
}

/** Fetches bytes or JSON for the trainer (the client supplies one with auth headers). */
export interface Fetcher {
  json(url: string): Promise<unknown>;
  bytes(url: string): Promise<Uint8Array>;
}

/**
 * Local training with tfjs. One LocalTrainer may serve many devices (the simulator shares one per
 * worker thread): it keeps one tfjs model per model URL and runs one job at a time, so devices
 * never interleave on a shared model. Between batches it yields to the event loop at least every
 * `yieldMs`, so heartbeats and socket.io pings keep flowing during long local training.
 */
export class LocalTrainer {
  private models = new Map<string, Promise<LoadedModel>>();
  private weightCache = new Map<string, Promise<Uint8Array>>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly logger: Logger;
  private readonly yieldMs: number;

  constructor(opts: { logger?: Logger; yieldMs?: number } = {}) {
    this.logger = opts.logger ?? silentLogger;
    this.yieldMs = opts.yieldMs ?? 50;
  }

  /** Run `job` after every job queued before it. */
  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Load (once) the tfjs model described by a model.json URL. */
  load(modelUrl: string, fetcher: Fetcher): Promise<LoadedModel> {
    let p = this.models.get(modelUrl);
    if (!p) {
      p = (async () => {
        const json = (await fetcher.json(modelUrl)) as LayersModelJson;
        const model = await tf.models.modelFromJSON({ modelTopology: json.modelTopology } as unknown as tf.io.ModelJSON);
        // The server's layout (model.json order); weights are set and read by name.
        const flags = travelFlags(model);
        const manifest = buildManifest(json.weightsManifest.flatMap((g) => g.weights).map((w) => ({ name: w.name, shape: w.shape, trainable: flags.get(w.name) ?? true })));
        const convIn = (l: tf.layers.Layer): boolean => /conv/i.test(l.getClassName()) || ((l as unknown as { layers?: tf.layers.Layer[] }).layers ?? []).some(convIn);
        const hasConv = model.layers.some((l) => l.trainable && l.weights.length > 0 && convIn(l));
        return { model, manifest, hasConv };
      })();
      p.catch(() => this.models.delete(modelUrl));
      this.models.set(modelUrl, p);
    }
    return p;
  }

  /**
   * Bytes of an immutable weights URL, cached (the two most recent versions) so devices sharing
   * this trainer download each version once.
   */
  weights(url: string, fetcher: Fetcher): Promise<Uint8Array> {
    let p = this.weightCache.get(url);
    if (!p) {
      p = fetcher.bytes(url);
      p.catch(() => this.weightCache.delete(url));
      this.weightCache.set(url, p);
      while (this.weightCache.size > 2) this.weightCache.delete(this.weightCache.keys().next().value!);
    }
    return p;
  }

  private setWeights(m: LoadedModel, flat: Float32Array): void {
    setFlatWeights(m.model, flat, m.manifest);
  }

  private readWeights(m: LoadedModel): Float32Array {
    return readFlatWeights(m.model, m.manifest);
  }

  /** local - global over the trainable entries of the manifest. */
  private trainableDelta(m: LoadedModel, global: Float32Array): Float32Array {
    const local = this.readWeights(m);
    let n = 0;
    for (const s of m.manifest) if (s.trainable !== false) n += s.size;
    const delta = new Float32Array(n);
    let o = 0;
    for (const s of m.manifest) {
      if (s.trainable === false) continue;
      for (let i = 0; i < s.size; i++) delta[o + i] = local[s.offset + i] - global[s.offset + i];
      o += s.size;
    }
    return delta;
  }

  private compile(m: LoadedModel, loss: LossName, metrics: readonly MetricName[], optimizer: tf.Optimizer | string = 'sgd'): void {
    m.model.compile({ optimizer, loss, metrics: tfMetrics(metrics) });
  }

  private optimizer(plan: ClientPlan): tf.Optimizer {
    switch (plan.optimizer) {
      case 'sgd':
        return tf.train.sgd(plan.learningRate);
      case 'momentum':
        return tf.train.momentum(plan.learningRate, 0.9);
      case 'adam':
        return tf.train.adam(plan.learningRate);
    }
  }

  /**
   * Train from `global` on `data` (any LocalData) with the plan's loss, optimizer, epochs and
   * batch size, or with `custom` (the app's own loop); returns the trainable delta. Data that does
   * not fit the model throws FL_ERR_DATA_BAD_SHAPE / FL_ERR_DATA_BAD_LABELS before any training.
   * `shouldStop` aborts between batches.
   */
  fit(m: LoadedModel, global: Float32Array, data: LocalData, plan: ClientPlan, shouldStop: () => boolean = () => false, custom?: CustomTrain): Promise<FitOutput> {
    return this.serial(async () => {
      const t0 = Date.now();
      await ensureTrainableBackend(m.hasConv, this.logger);
      this.setWeights(m, global);
      const io = modelIO(m.model);
      let numExamples: number;
      const metrics: Record<string, number> = {};
      if (custom) {
        const r = (await custom(m.model, data, { ...plan, shouldStop })) ?? {};
        numExamples = r.numExamples ?? (isStreamed(data) ? NaN : 'inputSize' in data && typeof data.inputSize === 'number' ? datasetSize(data as Dataset) : (data as TensorData).xs instanceof tf.Tensor ? ((data as TensorData).xs as tf.Tensor).shape[0] : ((data as TensorData).xs as unknown[]).length);
        if (!(Number.isInteger(numExamples) && numExamples > 0)) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: 'a custom train() on streamed data must return numExamples (a positive integer)' });
        for (const [k, v] of Object.entries(r.metrics ?? {})) if (Number.isFinite(v)) metrics[k] = v;
      } else {
        let lastYield = Date.now();
        const onBatchEnd = async () => {
          if (shouldStop()) m.model.stopTraining = true;
          if (Date.now() - lastYield >= this.yieldMs) {
            await new Promise((r) => setTimeout(r, 0));
            lastYield = Date.now();
          }
        };
        const opt = this.optimizer(plan);
        let history: tf.History;
        try {
          if (isStreamed(data)) {
            const { batches, count } = await toBatches(data, io, plan.loss, plan.batchSize);
            this.compile(m, plan.loss, plan.metrics, opt);
            history = await m.model.fitDataset(batches, { epochs: plan.epochs, verbose: 0, callbacks: { onBatchEnd } });
            numExamples = Math.round(count() / plan.epochs);
          } else {
            const { xs, ys, n } = toTensors(data, io, plan.loss);
            try {
              if (n === 0) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: 'no local training data' });
              numExamples = n;
              this.compile(m, plan.loss, plan.metrics, opt);
              history = plan.proximalMu > 0
                ? await this.fitProximal(m, global, xs, ys, plan, opt, shouldStop)
                : await m.model.fit(xs, ys, { epochs: plan.epochs, batchSize: plan.batchSize, shuffle: true, verbose: 0, callbacks: { onBatchEnd } });
            } finally {
              xs.dispose();
              ys.dispose();
            }
          }
        } finally {
          opt.dispose();
        }
        for (const [k, h] of Object.entries(history.history)) {
          const v = h.length ? Number(h[h.length - 1]) : NaN;
          if (Number.isFinite(v)) metrics[HISTORY_NAMES[k] ?? k] = v;
        }
      }
      return { delta: this.trainableDelta(m, global), numExamples, metrics, trainMs: Date.now() - t0 };
    });
  }

  /**
   * FedProx local objective (Li et al. 2020): loss + mu/2 * ||w - w_global||^2, minimised with a
   * manual batch loop since model.fit cannot add the proximal term.
   */
  private async fitProximal(m: LoadedModel, global: Float32Array, xs: tf.Tensor, ys: tf.Tensor, plan: ClientPlan, opt: tf.Optimizer, shouldStop: () => boolean): Promise<tf.History> {
    // The compiled model's loss function (the plan's), applied per example.
    const lossByName: Record<string, (y: tf.Tensor, p: tf.Tensor) => tf.Tensor> = {
      categoricalCrossentropy: tf.metrics.categoricalCrossentropy,
      binaryCrossentropy: tf.metrics.binaryCrossentropy,
      meanSquaredError: tf.metrics.meanSquaredError,
      meanAbsoluteError: tf.metrics.meanAbsoluteError,
    };
    const lossFn = lossByName[plan.loss] ?? (m.model as unknown as { lossFunctions?: Array<(y: tf.Tensor, p: tf.Tensor) => tf.Tensor> }).lossFunctions?.[0];
    if (!lossFn) throw new AppError('FL_ERR_TASK_INVALID_SPEC', { loss: plan.loss, why: 'FedProx supports categorical and binary crossentropy, mean squared and mean absolute error' });
    const parts = splitFlat(global, m.manifest);
    const anchorOf = new Map(m.manifest.map((s, i) => [s.name, tf.tensor(parts[i], s.shape, 'float32')]));
    const anchors = [...anchorOf.values()];
    const vars = m.model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const n = xs.shape[0];
    const losses: number[] = [];
    let lastYield = Date.now();
    try {
      for (let e = 0; e < plan.epochs && !shouldStop(); e++) {
        const order = tf.util.createShuffledIndices(n);
        let sum = 0;
        let batches = 0;
        for (let s = 0; s < n && !shouldStop(); s += plan.batchSize) {
          const idx = tf.tensor1d(Array.from(order.subarray(s, Math.min(n, s + plan.batchSize))), 'int32');
          const bx = tf.gather(xs, idx);
          const by = tf.gather(ys, idx);
          const cost = opt.minimize(() => {
            const pred = m.model.apply(bx, { training: true }) as tf.Tensor;
            const ce = lossFn(by, pred).mean() as tf.Scalar;
            let prox = tf.scalar(0);
            for (const w of m.model.trainableWeights) prox = prox.add(tf.sum(tf.square(tf.sub(w.read(), anchorOf.get(w.originalName)!))));
            return ce.add(prox.mul(plan.proximalMu / 2)) as tf.Scalar;
          }, true, vars);
          sum += cost ? (await cost.data())[0] : 0;
          batches++;
          tf.dispose([idx, bx, by, cost!]);
          if (Date.now() - lastYield >= this.yieldMs) {
            await new Promise((r) => setTimeout(r, 0));
            lastYield = Date.now();
          }
        }
        losses.push(sum / Math.max(1, batches));
      }
    } finally {
      anchors.forEach((t) => t.dispose());
    }
    return { history: { loss: losses } } as unknown as tf.History;
  }

  /** The loss and metrics (default: categoricalCrossentropy and accuracy) of `weights` on `data`. */
  evaluate(m: LoadedModel, weights: Float32Array, data: LocalData, batchSize: number, spec: { loss?: LossName; metrics?: MetricName[] } = {}): Promise<EvalOutput> {
    return this.serial(async () => {
      this.setWeights(m, weights);
      const loss = spec.loss ?? 'categoricalCrossentropy';
      const metricNames = spec.metrics ?? ['accuracy'];
      this.compile(m, loss, metricNames);
      const io = modelIO(m.model);
      let numExamples: number;
      let result: tf.Scalar | tf.Scalar[];
      if (isStreamed(data)) {
        const { batches, count } = await toBatches(data, io, loss, batchSize);
        result = (await m.model.evaluateDataset(batches as unknown as tf.data.Dataset<{}>, {})) as tf.Scalar | tf.Scalar[];
        numExamples = count();
      } else {
        const { xs, ys, n } = toTensors(data, io, loss);
        try {
          if (n === 0) throw new AppError('FL_ERR_DATA_BAD_SHAPE', { why: 'no local evaluation data' });
          result = m.model.evaluate(xs, ys, { batchSize }) as tf.Scalar | tf.Scalar[];
          numExamples = n;
        } finally {
          xs.dispose();
          ys.dispose();
        }
      }
      const values = (Array.isArray(result) ? result : [result]).map((t) => {
        const v = t.dataSync()[0];
        t.dispose();
        return v;
      });
      const metrics: Record<string, number> = {};
      ['loss', ...metricNames].forEach((k, i) => {
        if (Number.isFinite(values[i])) metrics[k] = values[i];
      });
      return { numExamples, metrics };
    });
  }
}
