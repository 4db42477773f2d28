import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { chooseAttackers } from './attack.js';
import type { DeviceFleet, DeviceSpec, FaultConfig, SharedSplit, WorkerEvent, WorkerInit } from './device-messages.js';
import { deriveSeed } from './rng.js';

/**
 * Many virtual devices spread over worker threads. Each worker runs its devices as real SDK
 * clients on real socket.io connections to `url` (see device-worker.ts); the dataset is shared
 * by every worker through SharedArrayBuffers, so memory does not grow with devices or workers.
 *
 * `DevicePool.start` resolves once every device's hello was accepted. Events: every WorkerEvent
 * except 'ready'/'stopped' is re-emitted as 'event'; stats accumulate in `stats`.
 */
export interface DevicePoolOptions extends DeviceFleet {
  /** Worker threads; default os.availableParallelism(), at most one per device. */
  workers?: number;
  faults?: Partial<FaultConfig>;
  seed?: number;
  verbose?: boolean;
  /** How long to wait for all hellos, ms. */
  startTimeoutMs?: number;
}

export interface PoolStats {
  fits: number;
  examples: number;
  trainMs: number;
  bytesUp: number;
  bytesDown: number;
  dropouts: number;
  stragglers: number;
  rejoins: number;
  /** Poisoned updates sent (reports of attacker devices, FaultConfig.attack). */
  attacks: number;
  evals: number;
  rejected: Record<string, number>;
  errors: number;
  lastError?: string;
}

// Compiled (dist/*.js): workers start from device-worker.js. From sources (tests, tsx): Node 20
// cannot start a worker from a .ts file, so worker-bootstrap.mjs (src only) registers the
// development loader in the thread first and then imports device-worker.ts.
const COMPILED = import.meta.url.endsWith('.js');
const WORKER_ENTRY = new URL(COMPILED ? './device-worker.js' : './device-worker.ts', import.meta.url);
const WORKER_START = COMPILED ? WORKER_ENTRY : new URL('./worker-bootstrap.mjs', import.meta.url);

/** A copy of `a` in shared memory, unless it already lives there. */
function shared<T extends Float32Array | Uint8Array>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const Ctor = a.constructor as { new (b: SharedArrayBuffer): T };
  const out = new Ctor(new SharedArrayBuffer(a.byteLength));
  out.set(a as never);
  return out;
}

function sharedSplit(s: SharedSplit): SharedSplit {
  return { x: shared(s.x), y: shared(s.y) };
}

export function defaultWorkerCount(devices: number): number {
  return Math.max(1, Math.min(devices, availableParallelism()));
}

export class DevicePool extends EventEmitter {
  readonly stats: PoolStats = { fits: 0, examples: 0, trainMs: 0, bytesUp: 0, bytesDown: 0, dropouts: 0, stragglers: 0, rejoins: 0, attacks: 0, evals: 0, rejected: {}, errors: 0 };
  backend = 'unknown';
  private stopped = false;

  private constructor(private readonly workers: Worker[]) {
    super();
  }

  get workerCount(): number {
    return this.workers.length;
  }

  static async start(o: DevicePoolOptions): Promise<DevicePool> {
    if (o.devices.length === 0) throw new Error('DevicePool: no devices');
    const n = Math.max(1, Math.min(o.workers ?? defaultWorkerCount(o.devices.length), o.devices.length));
    const faults: FaultConfig = { dropout: o.faults?.dropout ?? 0, straggler: o.faults?.straggler, rejoinMs: o.faults?.rejoinMs ?? [1000, 3000], attack: o.faults?.attack };
    // The same devices are malicious in every run with the same seed and device count.
    const attackers = faults.attack ? chooseAttackers(o.devices.length, faults.attack.fraction, deriveSeed(o.seed ?? 1, 77)) : new Set<number>();
    const devices: DeviceSpec[] = o.devices.map((d, i) => (attackers.has(i) ? { ...d, attacker: true } : d));
    const train = sharedSplit(o.train);
    const test = o.test ? sharedSplit(o.test) : undefined;
    const workers: Worker[] = [];
    const pool = new DevicePool(workers);
    const ready: Promise<void>[] = [];
    for (let w = 0; w < n; w++) {
      const from = Math.floor((w * o.devices.length) / n);
      const to = Math.floor(((w + 1) * o.devices.length) / n);
      const init: WorkerInit & { __entry: string } = {
        __entry: WORKER_ENTRY.href,
        workerIndex: w,
        url: o.url,
        token: o.token,
        taskId: o.taskId,
        train,
        test,
        inputSize: o.inputSize,
        numClasses: o.numClasses,
        ...(o.labelSize !== undefined ? { labelSize: o.labelSize } : {}),
        ...(o.labels !== undefined ? { labels: o.labels } : {}),
        devices: devices.slice(from, to),
        faults,
        seed: o.seed ?? 1,
        verbose: o.verbose ?? false,
      };
      // execArgv: [] so that the parent's loader flags (tsx, vitest) are not inherited; the bootstrap registers tsx itself.
      const worker = new Worker(WORKER_START, { workerData: init, execArgv: [] });
      workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.on('message', (e: WorkerEvent) => {
            if (e.type === 'ready') {
              pool.backend = e.backend;
              resolve();
            } else if (e.type === 'error' && e.fatal) {
              reject(new Error(`device worker ${w}: ${e.message}`));
            }
            pool.onEvent(e);
          });
          worker.once('error', (err) => reject(err));
          worker.once('exit', (code) => {
            if (pool.stopped) return;
            const message = `device worker ${w} exited with code ${code} before it was stopped`;
            reject(new Error(message));
            pool.onEvent({ type: 'error', message, fatal: true });
          });
        }),
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('device pool: devices did not all connect in time')), o.startTimeoutMs ?? 120_000);
    });
    try {
      await Promise.race([Promise.all(ready), timeout]);
    } catch (err) {
      await pool.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return pool;
  }

  private onEvent(e: WorkerEvent): void {
    const s = this.stats;
    switch (e.type) {
      case 'fit':
        s.fits++;
        s.examples += e.numExamples;
        s.trainMs += e.trainMs;
        s.bytesUp += e.bytesUp;
        s.bytesDown += e.bytesDown;
        break;
      case 'eval':
        s.evals++;
        break;
      case 'fault':
        if (e.kind === 'dropout') s.dropouts++;
        else if (e.kind === 'straggler') s.stragglers++;
        else if (e.kind === 'attack') s.attacks++;
        else s.rejoins++;
        break;
      case 'rejected':
        s.rejected[e.code] = (s.rejected[e.code] ?? 0) + 1;
        break;
      case 'error':
        s.errors++;
        s.lastError = e.message;
        break;
      default:
        return;
    }
    this.emit('event', e);
  }

  /** Stop every device (sockets closed) and end the workers. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 5000);
            w.on('message', (e: WorkerEvent) => {
              if (e.type === 'stopped') {
                clearTimeout(t);
                resolve();
              }
            });
            w.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            w.postMessage({ type: 'stop' });
          }),
      ),
    );
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
