import { parentPort, workerData } from 'node:worker_threads';
import { FileStateStore, FlotillaClient, LocalTrainer, MemoryStateStore, resolveBackend, type Dataset, type Logger } from '@flotilla/client';
import type { DeviceSpec, PoolCommand, WorkerEvent, WorkerInit } from './device-messages.js';
import { applyAttack } from './attack.js';
import { createRng, deriveSeed } from './rng.js';
import { holdMs } from './device-speed.js';

/**
 * One worker thread of the device pool: runs its share of virtual devices as real SDK clients
 * (FlotillaClient over socket.io), all sharing one LocalTrainer (one tfjs model per worker) and
 * the SharedArrayBuffer-backed dataset (each device holds only its index arrays).
 *
 * Faults, decided per (device, round) by a seeded stream:
 *  - dropout: after training the device vanishes (drops its report, disconnects) and comes back
 *    after `rejoinMs` with the same deviceId;
 *  - straggler: the device waits `delayMs` before reporting;
 *  - attack: devices the pool marked `attacker` poison every delta they report (attack.ts),
 *    through the SDK's hooks.transformDelta.
 *
 * Contract with the pool: posts 'ready' once every device's hello was accepted (or 'error' with
 * fatal: true), then events as they happen; on 'stop' it stops every client and posts 'stopped'.
 */
const init = workerData as WorkerInit;
const port = parentPort!;
const post = (e: WorkerEvent) => port.postMessage(e);

const logger: Logger = init.verbose
  ? { info: () => {}, warn: (m, ...r) => console.warn(`[worker ${init.workerIndex}]`, m, ...r), error: (m, ...r) => console.error(`[worker ${init.workerIndex}]`, m, ...r) }
  : { info: () => {}, warn: () => {}, error: () => {} };

const trainer = new LocalTrainer({ logger });
// One store for the thread's devices (keys carry the device id), so a device that vanishes and rejoins keeps its state.
const stateStore = init.stateDir ? new FileStateStore(init.stateDir) : new MemoryStateStore();
const rng = createRng(deriveSeed(init.seed, 1000 + init.workerIndex));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Device {
  spec: DeviceSpec;
  client: FlotillaClient | null;
  offline: boolean;
}

const devices: Device[] = init.devices.map((spec) => ({ spec, client: null, offline: false }));
let stopping = false;

function dataset(split: { x: Float32Array; y: Uint8Array | Float32Array }, indices: Uint32Array): Dataset {
  return { x: split.x, y: split.y, inputSize: init.inputSize, numClasses: init.numClasses, indices, labelSize: init.labelSize ?? 1, labels: init.labels ?? 'classIds' };
}

function makeClient(dev: Device): FlotillaClient {
  const { spec } = dev;
  const trainData = dataset(init.train, spec.train);
  const evalData = init.test && spec.eval && spec.eval.length > 0 ? dataset(init.test, spec.eval) : undefined;
  const attack = spec.attacker ? init.faults.attack : undefined;
  // A device's job starts when its instruction arrives: the nominal time (--device-time-ms x speed)
  // covers fetching the model, waiting for this thread's shared trainer, and training, so the
  // simulator's shared CPU is hidden from the fleet's clock wherever the nominal time allows.
  let jobStartedAt = Date.now();
  const client = new FlotillaClient({
    url: init.url,
    token: init.token,
    taskId: init.taskId,
    deviceId: spec.deviceId,
    trainer,
    stateStore,
    logger,
    reconnect: { initialDelayMs: 200, maxDelayMs: 5000 },
    data: {
      train: () => trainData,
      ...(evalData ? { evaluate: () => evalData } : {}) },
    hooks: {
      instructed: () => {
        jobStartedAt = Date.now();
      },
      beforeReport: async ({ round }) => {
        if (stopping) return 'drop';
        if (spec.speed !== undefined) await sleep(holdMs(spec.speed, jobStartedAt, Date.now(), init.faults.deviceTimeMs));
        if (init.faults.dropout > 0 && rng() < init.faults.dropout) {
          post({ type: 'fault', kind: 'dropout', deviceId: spec.deviceId, round });
          setImmediate(() => void vanish(dev, round));
          return 'drop';
        }
        const st = init.faults.straggler;
        if (st && st.probability > 0 && rng() < st.probability) {
          post({ type: 'fault', kind: 'straggler', deviceId: spec.deviceId, round });
          await sleep(st.delayMs);
        }
        return 'send';
      },
      ...(attack
        ? {
            transformDelta: (delta: Float32Array, { round }: { round: number }) => {
              post({ type: 'fault', kind: 'attack', deviceId: spec.deviceId, round });
              return applyAttack(delta, attack, rng);
            },
          }
        : {}),
    },
  });
  client.on('fit', (e) => post({ type: 'fit', deviceId: spec.deviceId, ...e }));
  client.on('eval', (e) => post({ type: 'eval', deviceId: spec.deviceId, round: e.round, numExamples: e.numExamples, accuracy: e.metrics.accuracy ?? NaN }));
  client.on('rejected', (e) => post({ type: 'rejected', deviceId: spec.deviceId, round: e.round, code: e.error.code }));
  client.on('error', (e) => {
    if (!stopping) post({ type: 'error', deviceId: spec.deviceId, message: e instanceof Error ? e.message : String(e) });
  });
  return client;
}

/** The device disappears (its socket closes, so the coordinator counts it dropped) and rejoins later. */
async function vanish(dev: Device, round: number): Promise<void> {
  if (dev.offline || !dev.client) return;
  dev.offline = true;
  const old = dev.client;
  dev.client = null;
  await old.stop();
  const [lo, hi] = init.faults.rejoinMs;
  await sleep(lo + rng() * (hi - lo));
  if (stopping) return;
  const c = makeClient(dev);
  dev.client = c;
  try {
    await c.start();
    dev.offline = false;
    post({ type: 'fault', kind: 'rejoin', deviceId: dev.spec.deviceId, round });
  } catch (err) {
    post({ type: 'error', deviceId: dev.spec.deviceId, message: `rejoin failed: ${String(err)}` });
  }
}

async function main(): Promise<void> {
  const backend = await resolveBackend(logger);
  // Connect in small waves so hundreds of hellos do not arrive in one burst.
  const wave = 25;
  for (let i = 0; i < devices.length; i += wave) {
    await Promise.all(
      devices.slice(i, i + wave).map(async (dev) => {
        dev.client = makeClient(dev);
        await dev.client.start();
      }),
    );
  }
  post({ type: 'ready', devices: devices.length, backend });
}

port.on('message', (cmd: PoolCommand) => {
  if (cmd.type !== 'stop') return;
  stopping = true;
  void Promise.all(devices.map((d) => d.client?.stop())).then(() => post({ type: 'stopped' }));
});

main().catch((err) => post({ type: 'error', message: err instanceof Error ? err.message : String(err), fatal: true }));
