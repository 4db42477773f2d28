import type * as tf from '@tensorflow/tfjs';
import { tfjsSignature } from '@flotilla/model';
import type { ModelSpec } from '@flotilla/protocol';
import { InstancePool } from './instance-pool.js';
import { tfjsIO, type ModelIO } from './model-io.js';
import type { ModelRunner } from './model-runner.js';
import { predictPacked } from './tfjs-predict.js';

/**
 * A tfjs LayersModel (one or several inputs and outputs, as the built model has them): on the
 * main thread's tfjs backend (wasm here; tfjs-node when installed), or with `instances` > 0 in
 * that many worker threads (instance-pool.ts), each with its own copy built from the same flat
 * weights. Both compute with predictPacked (tfjs-predict.ts).
 */
export class TfjsRunner implements ModelRunner {
  readonly io: ModelIO;
  private pool: InstancePool | null = null;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly spec: ModelSpec,
    /** The weights the model was built from (instances build their copies from them). */
    private readonly weights: Float32Array,
  ) {
    this.io = tfjsIO(tfjsSignature(model));
  }

  run(x: Float32Array, rows: number): Float32Array | Promise<Float32Array> {
    return this.pool ? this.pool.run(x, rows) : predictPacked(this.model, this.io, x, rows);
  }

  async configure(n: number, maxBatchSize: number): Promise<number> {
    if (n > 0) {
      if (!this.pool) {
        const pool = new InstancePool({ spec: this.spec, weights: this.weights, io: this.io, rowWidth: this.io.rowWidth, outWidth: this.io.outWidth, rows: Math.max(1, maxBatchSize) });
        try {
          await pool.resize(n);
        } catch (err) {
          await pool.close();
          throw err;
        }
        this.pool = pool;
      } else await this.pool.resize(n);
    } else if (this.pool) {
      const old = this.pool;
      this.pool = null;
      void old.resize(0);
    }
    return Math.max(1, n);
  }

  instances(): { size: number; restarts: number; backend: string } | null {
    return this.pool ? { size: this.pool.size, restarts: this.pool.restarts, backend: this.pool.backend } : null;
  }

  crashInstance(): boolean {
    return this.pool?.crashOne() ?? false;
  }

  dispose(): void {
    this.model.dispose();
    void this.pool?.close();
    this.pool = null;
  }
}
