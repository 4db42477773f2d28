import * as tf from '@tensorflow/tfjs';
import type { ClientPlan, LayersModelJson } from '@flotilla/protocol';
import { buildManifest, splitFlat, type WeightManifest } from '@flotilla/protocol';
import { ensureTrainableBackend } from '@flotilla/model';
import { gatherRows, type Dataset } from './data.js';
import { silentLogger, type Logger } from '@flotilla/model';

export interface LoadedModel {
  model: tf.LayersModel;
  manifest: WeightManifest;
  /** Training it needs Conv2DBackpropFilter (not in the wasm backend); inference does not. */
  hasConv: boolean;
}

export interface FitOutput {
  /** w_local - w_global, flat, manifest order. */
  delta: Float32Array;
  numExamples: number;
  metrics: Record<string, number>;
  trainMs: number;
}

export interface EvalOutput {
  numExamples: number;
  metrics: Record<string, number>;
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
        const manifest = buildManifest(json.weightsManifest.flatMap((g) => g.weights));
        const hasConv = model.layers.some((l) => /conv/i.test(l.getClassName()));
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
    const parts = splitFlat(flat, m.manifest);
    const ts = m.manifest.map((s, i) => tf.tensor(parts[i], s.shape, 'float32'));
    m.model.setWeights(ts);
    ts.forEach((t) => t.dispose());
  }

  private readWeights(m: LoadedModel): Float32Array {
    const out = new Float32Array(m.manifest.length ? m.manifest[m.manifest.length - 1].offset + m.manifest[m.manifest.length - 1].size : 0);
    m.model.weights.forEach((w, i) => out.set(w.read().dataSync() as Float32Array, m.manifest[i].offset));
    return out;
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

  /** Train E epochs from `global` on `data`; returns the delta. `shouldStop` aborts between batches. */
  fit(m: LoadedModel, global: Float32Array, data: Dataset, plan: ClientPlan, shouldStop: () => boolean = () => false): Promise<FitOutput> {
    return this.serial(async () => {
      const t0 = Date.now();
      await ensureTrainableBackend(m.hasConv, this.logger);
      this.setWeights(m, global);
      const { x, y, n } = gatherRows(data);
      if (n === 0) throw new Error('no local training data');
      const xs = tf.tensor2d(x, [n, data.inputSize]);
      const labels = tf.tensor1d(y, 'int32');
      const ys = tf.oneHot(labels, data.numClasses).toFloat();
      labels.dispose();
      const opt = this.optimizer(plan);
      m.model.compile({ optimizer: opt, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      let lastYield = Date.now();
      let history: tf.History;
      try {
        if (plan.proximalMu > 0) {
          history = await this.fitProximal(m, global, xs, ys, plan, opt, shouldStop);
        } else {
          history = await m.model.fit(xs, ys, {
            epochs: plan.epochs,
            batchSize: plan.batchSize,
            shuffle: true,
            verbose: 0,
            callbacks: {
              onBatchEnd: async () => {
                if (shouldStop()) m.model.stopTraining = true;
                if (Date.now() - lastYield >= this.yieldMs) {
                  await new Promise((r) => setTimeout(r, 0));
                  lastYield = Date.now();
                }
              },
            },
          });
        }
      } finally {
        xs.dispose();
        ys.dispose();
        opt.dispose();
      }
      const local = this.readWeights(m);
      const delta = new Float32Array(local.length);
      for (let i = 0; i < delta.length; i++) delta[i] = local[i] - global[i];
      const last = (k: string) => {
        const h = history.history[k];
        return h && h.length ? Number(h[h.length - 1]) : undefined;
      };
      const metrics: Record<string, number> = {};
      const loss = last('loss');
      const acc = last('acc') ?? last('accuracy');
      if (loss !== undefined && Number.isFinite(loss)) metrics.loss = loss;
      if (acc !== undefined && Number.isFinite(acc)) metrics.accuracy = acc;
      return { delta, numExamples: n, metrics, trainMs: Date.now() - t0 };
    });
  }

  /**
   * FedProx local objective (Li et al. 2020): loss + mu/2 * ||w - w_global||^2, minimised with a
   * manual batch loop since model.fit cannot add the proximal term.
   */
  private async fitProximal(m: LoadedModel, global: Float32Array, xs: tf.Tensor2D, ys: tf.Tensor, plan: ClientPlan, opt: tf.Optimizer, shouldStop: () => boolean): Promise<tf.History> {
    const parts = splitFlat(global, m.manifest);
    const anchors = m.manifest.map((s, i) => tf.tensor(parts[i], s.shape, 'float32'));
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
            const ce = tf.metrics.categoricalCrossentropy(by, pred).mean() as tf.Scalar;
            let prox = tf.scalar(0);
            m.model.weights.forEach((w, i) => {
              if (w.trainable) prox = prox.add(tf.sum(tf.square(tf.sub(w.read(), anchors[i]))));
            });
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

  /** Loss and accuracy of `weights` on `data`. */
  evaluate(m: LoadedModel, weights: Float32Array, data: Dataset, batchSize: number): Promise<EvalOutput> {
    return this.serial(async () => {
      this.setWeights(m, weights);
      const { x, y, n } = gatherRows(data);
      if (n === 0) throw new Error('no local evaluation data');
      return tf.tidy(() => {
        const xs = tf.tensor2d(x, [n, data.inputSize]);
        const ys = tf.oneHot(tf.tensor1d(y, 'int32'), data.numClasses).toFloat();
        const pred = m.model.predict(xs, { batchSize }) as tf.Tensor;
        const loss = tf.metrics.categoricalCrossentropy(ys, pred).mean().dataSync()[0];
        const acc = tf.metrics.categoricalAccuracy(ys, pred).mean().dataSync()[0];
        return { numExamples: n, metrics: { loss, accuracy: acc } };
      });
    });
  }
}
