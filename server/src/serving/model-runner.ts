import type { ModelIO } from './model-io.js';

/**
 * How a loaded version computes (tfjs-runner.ts, onnx-runner.ts). Contracts:
 *  - `run` answers `rows` packed rows (model-io.ts) with `rows` packed output rows; the batcher
 *    calls it with at most `parallel` batches at once;
 *  - `configure(instances)` starts or retires instances (0: the runner's default) and resolves once
 *    the new ones are ready, with the number of batches that may now run at once; it throws
 *    FL_ERR_SERVING_UNAVAILABLE when they cannot start;
 *  - `dispose` frees everything; batches still running may fail.
 */
export interface ModelRunner {
  readonly io: ModelIO;
  run(input: Float32Array, rows: number): Float32Array | Promise<Float32Array>;
  configure(instances: number, maxBatchSize: number): Promise<number>;
  /** Instance statistics (null when the runner has no separate instances). */
  instances(): { size: number; restarts: number; backend: string } | null;
  /** Tests: make one busy instance exit abruptly; false when none is busy or the runner has none. */
  crashInstance(): boolean;
  dispose(): void;
}
