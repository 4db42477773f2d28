import { availableParallelism } from 'node:os';
import { AppError } from '../errors.js';
import { unpackRows, packRows, type ModelIO, type TensorIO } from './model-io.js';
import type { ModelRunner } from './model-runner.js';
import type { OrtModule, OrtSession, OrtTensor } from './onnx-runtime.js';

/**
 * An ONNX model run by onnxruntime-node. Its `run` is asynchronous: the computation happens on
 * onnxruntime's own threads, never on the event loop, so an ONNX version needs no worker threads
 * to keep the main thread free. Instances are separate sessions of the same model bytes
 * (`instances` 0: one session using every core; N: N sessions sharing the cores), each running
 * one batch at a time. Multi-input and multi-output models are served: the packed rows
 * (model-io.ts) are split into one tensor per input, INT64/INT32 inputs converted from float32,
 * and every output (any numeric type) is packed back as float32.
 */
export class OnnxRunner implements ModelRunner {
  private sessions: OrtSession[] = [];
  private idle: OrtSession[] = [];
  private waiting: Array<(s: OrtSession) => void> = [];
  private disposed = false;
  private threads = -1;
  private readonly busy = new Set<OrtSession>();

  constructor(
    private readonly ort: OrtModule,
    private readonly bytes: Uint8Array,
    readonly io: ModelIO,
  ) {}

  /** Start the first session; FL_ERR_SERVING_UNAVAILABLE when onnxruntime refuses the model. */
  async start(): Promise<void> {
    await this.configure(0, 1);
  }

  private async session(threads: number): Promise<OrtSession> {
    try {
      // No spinning: onnxruntime's idle pool threads would otherwise busy-wait for work and take
      // the cores the event loop (and other sessions) need between batches.
      const s = await this.ort.InferenceSession.create(this.bytes, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      });
      const missing = [...this.io.inputs, ...this.io.outputs].map((t) => t.name).filter((n) => !s.inputNames.includes(n) && !s.outputNames.includes(n));
      if (missing.length) throw new Error(`the session lacks ${missing.join(', ')}`);
      return s;
    } catch (err) {
      throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: `onnxruntime could not load the model: ${(err as Error).message.split('\n')[0]}` });
    }
  }

  async configure(instances: number, _maxBatchSize: number): Promise<number> {
    const n = Math.max(1, instances);
    const threads = instances > 0 ? Math.max(1, Math.floor(availableParallelism() / n)) : 0; // 0: onnxruntime's default (all cores)
    if (this.sessions.length === n && this.threads === threads) return n;
    const fresh = await Promise.all(Array.from({ length: n }, () => this.session(threads)));
    const old = this.sessions;
    this.sessions = fresh;
    this.threads = threads;
    this.idle = [...fresh];
    for (const s of old) this.retire(s);
    this.handOut();
    return n;
  }

  private retire(s: OrtSession): void {
    if (!this.busy.has(s)) void s.release().catch(() => undefined);
  }

  private handOut(): void {
    while (this.idle.length && this.waiting.length) this.waiting.shift()!(this.idle.shift()!);
  }

  private acquire(): Promise<OrtSession> {
    const s = this.idle.shift();
    return s ? Promise.resolve(s) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(s: OrtSession): void {
    this.busy.delete(s);
    if (this.disposed || !this.sessions.includes(s)) {
      void s.release().catch(() => undefined);
      return;
    }
    this.idle.push(s);
    this.handOut();
  }

  private feed(t: TensorIO, data: Float32Array, rows: number): OrtTensor {
    const dims = [rows, ...t.shape];
    if (t.datatype === 'INT64') return new this.ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), dims);
    if (t.datatype === 'INT32') return new this.ort.Tensor('int32', Int32Array.from(data), dims);
    // onnxruntime-node refuses views of a SharedArrayBuffer ("Invalid argument"): copy those.
    return new this.ort.Tensor('float32', data.buffer instanceof SharedArrayBuffer ? data.slice() : data, dims);
  }

  async run(input: Float32Array, rows: number): Promise<Float32Array> {
    if (this.disposed) throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'model unloaded' });
    const parts = unpackRows(input, this.io.inputs, this.io.rowWidth, rows);
    const feeds: Record<string, OrtTensor> = {};
    this.io.inputs.forEach((t, k) => (feeds[t.name] = this.feed(t, parts[k], rows)));
    const s = await this.acquire();
    this.busy.add(s);
    let out: Record<string, OrtTensor>;
    try {
      out = await s.run(feeds);
    } catch (err) {
      throw new AppError('FL_ERR_SERVING_BAD_INPUT', { why: `onnxruntime refused the batch: ${(err as Error).message.split('\n')[0]}` });
    } finally {
      this.release(s);
    }
    const blocks = this.io.outputs.map((t) => {
      const o = out[t.name];
      if (!o || o.data.length !== rows * t.width) throw new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'the model produced an output of another size than its signature', output: t.name, expected: rows * t.width, got: o?.data.length ?? 0 });
      return o.data instanceof Float32Array ? o.data : Float32Array.from(o.data as ArrayLike<number>, Number);
    });
    return packRows(blocks, this.io.outputs, this.io.outWidth, rows);
  }

  instances(): { size: number; restarts: number; backend: string } | null {
    return { size: this.sessions.length, restarts: 0, backend: 'onnxruntime-cpu' };
  }

  crashInstance(): boolean {
    return false;
  }

  dispose(): void {
    this.disposed = true;
    for (const s of this.sessions) this.retire(s);
    this.sessions = [];
    this.idle = [];
  }
}
