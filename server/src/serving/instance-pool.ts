import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ModelSpec } from '@flotilla/protocol';
import { AppError } from '../errors.js';
import type { ModelIO } from './model-io.js';

/** What an instance needs to build its model (sent once, at start; the weights are copied once). */
export interface InstanceInit {
  topology: ModelSpec['topology'];
  manifest: ModelSpec['manifest'];
  weights: Float32Array;
  /** The model's inputs and outputs (packed rows, model-io.ts). */
  io: ModelIO;
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
  warmRows: number;
}
export type InstanceRequest =
  | { type: 'run'; job: number; rows: number }
  | { type: 'buffers'; input: SharedArrayBuffer; output: SharedArrayBuffer }
  | { type: 'crash' };
export type InstanceReply = { type: 'ready'; backend: string } | { type: 'done'; job: number; length: number } | { type: 'failed'; job: number; message: string };

export interface PoolModel {
  spec: ModelSpec;
  weights: Float32Array;
  io: ModelIO;
  rowWidth: number;
  outWidth: number;
  /** Rows the shared buffers hold at first (they grow for larger batches). */
  rows: number;
}

interface Job {
  id: number;
  input: Float32Array;
  rows: number;
  tries: number;
  resolve(out: Float32Array): void;
  reject(err: unknown): void;
}

interface Slot {
  worker: Worker;
  input: SharedArrayBuffer;
  output: SharedArrayBuffer;
  ready: Promise<void>;
  isReady: boolean;
  job: Job | null;
  retiring: boolean;
}

// Workers start from plain JS: under tsx (development, tests) the bootstrap registers tsx's loader
// in the worker before importing the TypeScript entry; built JS imports it directly.
const BOOT = `(async () => {
  const { workerData } = require('node:worker_threads');
  if (workerData.entry.endsWith('.ts')) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})().catch((err) => { console.error(err); process.exit(71); });`;
const ENTRY = new URL(`./instance-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
// tsx's ESM API (its package exports map `tsx/esm/api` to this file for import).
const TSX = ENTRY.endsWith('.ts') ? pathToFileURL(createRequire(import.meta.url).resolve('tsx/package.json').replace(/package\.json$/, 'dist/esm/api/index.mjs')).href : '';

/**
 * Model instances in worker threads (Triton's instance groups): each instance holds its own copy
 * of the model and one batch at a time; inputs and outputs cross through per-instance
 * SharedArrayBuffers, so the main thread only copies floats in and out. Contracts:
 *  - `run` answers a batch on an idle instance (the batcher runs at most `size` batches at once;
 *    more wait here for the next idle instance);
 *  - an instance that dies (crash, exit) is restarted; the batch it held runs again once on the
 *    restarted instance, and if that fails too it rejects with FL_ERR_SERVING_UNAVAILABLE (503);
 *    other batches are unaffected;
 *  - `resize` adds instances (resolving once they are ready) or retires extra ones after their
 *    current batch; `close` terminates them all and rejects what waits.
 */
export class InstancePool {
  private slots: Slot[] = [];
  private waiting: Job[] = [];
  private nextJob = 1;
  private closed = false;
  restarts = 0;
  backend = '';

  constructor(private readonly model: PoolModel) {}

  get size(): number {
    return this.slots.filter((s) => !s.retiring).length;
  }

  async resize(n: number): Promise<void> {
    const live = this.slots.filter((s) => !s.retiring);
    for (const s of live.slice(n)) this.retire(s);
    const added = Array.from({ length: Math.max(0, n - live.length) }, () => this.spawn(this.model.rows));
    this.slots.push(...added);
    await Promise.all(added.map((s) => s.ready));
  }

  run(input: Float32Array, rows: number): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'model instances closed' }));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextJob++, input, rows, tries: 0, resolve, reject });
      this.dispatch();
    });
  }

  /** Make one busy instance exit abruptly (tests: a stand-in for a native crash); false when none is busy. */
  crashOne(): boolean {
    const s = this.slots.find((x) => x.job && !x.retiring);
    s?.worker.postMessage({ type: 'crash' } satisfies InstanceRequest);
    return !!s;
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'model instances closed' });
    for (const j of this.waiting.splice(0)) j.reject(err);
    const slots = this.slots.splice(0);
    for (const s of slots) s.job?.reject(err);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private spawn(rows: number): Slot {
    const input = new SharedArrayBuffer(rows * this.model.rowWidth * 4);
    const output = new SharedArrayBuffer(rows * this.model.outWidth * 4);
    const { spec, weights } = this.model;
    const init: InstanceInit = { topology: spec.topology, manifest: spec.manifest, weights, io: this.model.io, input, output, warmRows: rows };
    const worker = new Worker(BOOT, { eval: true, workerData: { entry: ENTRY, tsx: TSX, init } });
    const slot: Slot = { worker, input, output, ready: Promise.resolve(), isReady: false, job: null, retiring: false };
    slot.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: InstanceReply) => {
        if (m.type === 'ready') {
          slot.isReady = true;
          this.backend = m.backend;
          resolve();
          this.dispatch();
        } else this.finish(slot, m);
      });
      worker.once('exit', (code) => {
        if (slot.isReady) return this.died(slot);
        const err = new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'a model instance failed to start', exitCode: code });
        reject(err);
        // It cannot even start: no restart loop; fail what waits once no instance is left.
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        if (this.slots.length === 0) for (const j of this.waiting.splice(0)) j.reject(err);
      });
      worker.on('error', () => undefined); // 'exit' follows and handles it
    });
    slot.ready.catch(() => undefined);
    return slot;
  }

  private dispatch(): void {
    for (const s of this.slots) {
      if (this.waiting.length === 0) return;
      if (!s.isReady || s.job || s.retiring) continue;
      const job = this.waiting.shift()!;
      this.start(s, job);
    }
  }

  private start(s: Slot, job: Job): void {
    job.tries++;
    const need = job.rows;
    if (need * this.model.rowWidth * 4 > s.input.byteLength || need * this.model.outWidth * 4 > s.output.byteLength) {
      s.input = new SharedArrayBuffer(need * this.model.rowWidth * 4);
      s.output = new SharedArrayBuffer(need * this.model.outWidth * 4);
      s.worker.postMessage({ type: 'buffers', input: s.input, output: s.output } satisfies InstanceRequest);
    }
    new Float32Array(s.input, 0, job.input.length).set(job.input);
    s.job = job;
    s.worker.postMessage({ type: 'run', job: job.id, rows: job.rows } satisfies InstanceRequest);
  }

  private finish(s: Slot, m: Extract<InstanceReply, { job: number }>): void {
    const job = s.job;
    if (!job || job.id !== m.job) return;
    s.job = null;
    if (m.type === 'done') job.resolve(new Float32Array(s.output, 0, m.length).slice());
    else job.reject(new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'inference failed in a model instance', message: m.message }));
    if (s.retiring) void s.worker.terminate();
    this.dispatch();
  }

  private retire(s: Slot): void {
    s.retiring = true;
    if (!s.job) void s.worker.terminate();
  }

  /** An instance exited: restart it unless retired or closed; its batch runs once more. */
  private died(s: Slot): void {
    const i = this.slots.indexOf(s);
    if (i < 0) return;
    const job = s.job;
    s.job = null;
    if (s.retiring || this.closed) {
      this.slots.splice(i, 1);
      if (job) this.waiting.unshift(job);
      this.dispatch();
      return;
    }
    this.restarts++;
    const fresh = this.spawn(Math.max(this.model.rows, Math.floor(s.input.byteLength / (this.model.rowWidth * 4))));
    this.slots[i] = fresh;
    if (job) {
      if (job.tries >= 2) job.reject(new AppError('FL_ERR_SERVING_UNAVAILABLE', { why: 'a model instance crashed twice on this batch' }));
      else this.waiting.unshift(job);
    }
    this.dispatch();
  }
}
