import type { AddressInfo } from 'node:net';
import { archiveDirectory, buildApp, importModel, type FlotillaApp, type RoundRecord, type TaskRecord } from '@flotilla/server';
import { resolveBackend } from '@flotilla/client';
import { effectiveMetrics, type TaskPlanInput } from '@flotilla/protocol';
import { loadDataFile, type SimData } from './data-file.js';
import { createCentralEvaluator, RemoteVersionEvaluator } from './central-evaluator.js';
import type { SimOptions } from './cli-options.js';
import type { DeviceSpec } from './device-messages.js';
import { DevicePool, type PoolStats } from './device-pool.js';
import { loadMnist, MNIST_CLASSES, MNIST_INPUT_SIZE, type Mnist } from './mnist.js';
import { AppError } from '@flotilla/protocol';
import { partition } from './partition.js';
import { createProgress, type RoundProgress } from './progress.js';
import { RemoteCoordinator } from './remote-coordinator.js';
import type { RetryOptions } from './coordinator-fetch.js';
import { defaultOutDir, roundRowFromRecord, summarize, writeResults, type Results, type RoundRow, type WrittenFiles } from './results.js';
import { deriveSeed } from './rng.js';

/**
 * One simulation run: MNIST partitioned over N virtual devices (a DevicePool of worker threads),
 * a coordinator (in-process, or remote with --url), FedAvg rounds until the target accuracy or
 * the round cap, and the result files. Used by the CLI, the tests and the benchmarks.
 */
export interface SimulationHooks {
  /** Replace the progress output (tests, benchmarks). */
  progress?: RoundProgress;
  /** Called for every closed round, after it is recorded. */
  onRound?(row: RoundRow): void;
  /** In-process mode: the coordinator's full record of every closed round (train metrics such as dpEpsilon, rejections). */
  onRecord?(record: RoundRecord): void;
  /** Do not write result files. */
  noFiles?: boolean;
  /** Dataset to use instead of loading MNIST (tests pass a subset). */
  mnist?: Mnist;
  /** Extra plan fields for the task (e.g. overSelect for the paper's exact C=0.1). */
  plan?: Partial<TaskPlanInput>;
  /** Abort the run early: the task is stopped, and the rounds so far are written as usual. */
  signal?: AbortSignal;
  /** In-process mode: evaluate each candidate on the test set (default true; benchmarks of raw throughput turn it off). */
  centralEvaluation?: boolean;
  /** --url mode: a line while the coordinator is unreachable and being retried (default: to stderr). */
  onWait?(message: string): void;
}

export interface SimulationResult {
  results: Results;
  files?: WrittenFiles;
  outDir?: string;
  pool: PoolStats;
  workers: number;
  backend: string;
  /** Wall time from the first round's start to the end, ms. */
  trainingWallMs: number;
}

const TERMINAL_TASK = new Set(['done', 'stopped', 'failed']);

/** MNIST, or the user's --data file, as the simulator's data. */
export function simData(o: SimOptions, mnist?: Mnist): SimData {
  if (o.data) return loadDataFile(o.data, { labelColumns: o.labelColumns, testFraction: o.testFraction });
  const m = mnist ?? loadMnist({ trainLimit: o.trainLimit, testLimit: o.testLimit });
  return { train: m.train, test: m.test, inputSize: MNIST_INPUT_SIZE, labelSize: 1, labels: 'classIds', numClasses: MNIST_CLASSES, partitionLabels: m.train.y };
}

/** Training and (federated) evaluation index sets per device, from the options' partition. */
export function buildDevices(o: SimOptions, data: Pick<SimData, 'partitionLabels' | 'labels' | 'test'> | Mnist): DeviceSpec[] {
  const d: Pick<SimData, 'partitionLabels' | 'labels' | 'test'> = 'partitionLabels' in data ? data : { partitionLabels: data.train.y, labels: 'classIds', test: data.test };
  if (d.labels !== 'classIds' && o.partition !== 'iid') throw new AppError('FL_ERR_DATA_BAD_LABELS', { why: `--partition ${o.partition} splits by class; real-valued labels split only iid` });
  const testLabels = d.labels === 'classIds' ? (d.test.y as Uint8Array) : new Uint8Array(d.test.n);
  const train = partition(o.partition, d.partitionLabels, {
    clients: o.clients,
    seed: o.seed,
    alpha: o.alpha,
    examplesPerClient: o.examplesPerClient,
  });
  // Each device evaluates on a slice of the test set split the same way (same skew), when it can.
  let evalParts: Uint32Array[] | undefined;
  if ((o.evalClients ?? o.clientsPerRound) > 0) {
    try {
      evalParts = partition(o.partition, testLabels, { clients: o.clients, seed: deriveSeed(o.seed, 7), alpha: o.alpha });
    } catch {
      evalParts = undefined; // fewer test rows than devices: no federated evaluation
    }
  }
  return train.map((idx, i) => ({ deviceId: `sim-${String(i).padStart(5, '0')}`, train: idx, ...(evalParts ? { eval: evalParts[i] } : {}) }));
}

export function taskPlan(o: SimOptions, extra: Partial<TaskPlanInput> = {}): TaskPlanInput {
  return {
    clientsPerRound: o.clientsPerRound,
    roundDeadlineMs: o.deadlineMs,
    epochs: o.epochs,
    batchSize: o.batchSize,
    learningRate: o.lr,
    optimizer: 'sgd',
    maxRounds: o.rounds,
    targetAccuracy: o.targetAccuracy,
    evalClientsPerRound: o.evalClients ?? o.clientsPerRound,
    seed: o.seed,
    ...extra,
  };
}

function publicConfig(o: SimOptions, extra: Record<string, unknown>): Record<string, unknown> {
  const { token: _t, adminToken: _a, ...rest } = o;
  return { ...rest, ...extra };
}

export async function runSimulation(o: SimOptions, hooks: SimulationHooks = {}): Promise<SimulationResult> {
  const t0 = Date.now();
  const data = simData(o, hooks.mnist);
  const devices = buildDevices(o, data);
  const preset = o.modelDir ? undefined : o.model === 'cnn' ? 'mnist-cnn' : 'mnist-mlp';
  const loss = o.loss ?? (data.labels === 'classIds' ? 'categoricalCrossentropy' : 'meanSquaredError');
  const plan = taskPlan(o, { loss, ...(o.trainableLayers ? { trainableLayers: o.trainableLayers } : {}), ...hooks.plan });
  const test = { x: data.test.x, y: data.test.y, inputSize: data.inputSize, numClasses: data.numClasses, labelSize: data.labelSize, labels: data.labels, loss, metrics: effectiveMetrics({ loss, metrics: plan.metrics }) };
  const progress = hooks.progress ?? createProgress({ total: o.rounds, target: o.targetAccuracy, quiet: o.quiet });

  let app: FlotillaApp | undefined;
  let remote: RemoteCoordinator | undefined;
  let pool: DevicePool | undefined;
  const rows: RoundRow[] = [];
  const federated: Array<{ round: number; version: number; accuracy: number | null; loss: number | null }> = [];
  let stopReason = 'unknown';
  let trainingStart = 0;
  // --url: admin and registry calls wait out a coordinator that is down or restarting; devices
  // reconnect on their own (the SDK's reconnect with backoff).
  const retry: RetryOptions = { maxWaitMs: o.waitTimeout * 1000, onWait: hooks.onWait ?? ((m) => process.stderr.write(`${m}\n`)) };

  const record = (r: RoundRecord | RoundRow, own?: { accuracy: number; loss: number }) => {
    const row = 'state' in r ? roundRowFromRecord(r, own) : r;
    rows.push(row);
    const s = pool?.stats;
    const notes: string[] = [];
    if ('state' in r && r.state === 'failed' && r.failureReason) notes.push(r.failureReason);
    if (s && (s.dropouts || s.stragglers)) notes.push(`dropouts ${s.dropouts} stragglers ${s.stragglers}`);
    if (s?.attacks) notes.push(`poisoned updates so far ${s.attacks}`);
    progress.round(row, notes.length ? notes.join('; ') : undefined);
    hooks.onRound?.(row);
    return row;
  };

  try {
    let url: string;
    let token: string;
    let modelName = o.task;
    // Before anything touches tfjs (the server builds the preset's initial weights), so the
    // main thread uses the same backend as the devices.
    await resolveBackend();
    if (!o.url) {
      // Every simulated device joins with the one bootstrap token: allow the whole fleet.
      app = await buildApp({ logger: false, maxDevicesPerToken: Math.max(10_000, devices.length), ...(hooks.centralEvaluation === false ? {} : { centralEvaluator: createCentralEvaluator(test) }) });
      await app.listen({ port: 0, host: '127.0.0.1' });
      url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      token = app.flotilla.deviceToken;
      if (o.modelDir) {
        // The same path as an upload over REST: the directory streams as a tar into a registry version.
        const archive = await archiveDirectory(o.modelDir);
        const v = await importModel(app.flotilla.registry, { model: o.task, body: archive.chunks(), limitBytes: Number.MAX_SAFE_INTEGER, description: `imported from ${o.modelDir}` });
        await app.flotilla.coordinator.createTask({ id: o.task, fromVersion: { model: v.model, ref: v.version }, plan });
      } else {
        await app.flotilla.coordinator.createTask({ id: o.task, preset, plan });
      }
      modelName = o.task;
    } else {
      url = o.url;
      token = o.token!;
      remote = new RemoteCoordinator(url, o.adminToken ?? token, retry);
      const task = await remote.ensureTask(o.task, preset!, plan);
      modelName = task.modelName;
    }

    pool = await DevicePool.start({
      url,
      token,
      taskId: o.task,
      train: data.train,
      test: data.test,
      inputSize: data.inputSize,
      numClasses: data.numClasses,
      labelSize: data.labelSize,
      labels: data.labels,
      devices,
      workers: o.workers,
      seed: o.seed,
      faults: { dropout: o.dropout, straggler: o.straggler, attack: o.attack },
      verbose: !o.quiet && process.env.FLOTILLA_SIM_DEBUG === '1',
    });
    // Show each distinct device error once (the first few), so a broken setup is visible at once.
    const seenErrors = new Set<string>();
    pool.on('event', (e) => {
      if (e.type !== 'error') return;
      const key = e.message.slice(0, 300);
      if (e.fatal || (!seenErrors.has(key) && seenErrors.size < 5)) {
        seenErrors.add(key);
        progress.log(`device ${e.deviceId ?? '(worker)'}: ${e.message}${seenErrors.size === 5 ? ' (further distinct errors not shown)' : ''}`);
      }
    });
    trainingStart = Date.now();

    if (app) {
      const coordinator = app.flotilla.coordinator;
      stopReason = await new Promise<string>((resolve, reject) => {
        coordinator.events.on('round', (r: RoundRecord) => {
          if (r.taskId !== o.task) return;
          record(r);
          hooks.onRecord?.(r);
        });
        coordinator.events.on('evaluation', (e: { taskId: string; round: number; version: number; metrics: Record<string, number> }) => {
          if (e.taskId === o.task) federated.push({ round: e.round, version: e.version, accuracy: e.metrics.accuracy ?? null, loss: e.metrics.loss ?? null });
        });
        coordinator.events.on('task', (t: TaskRecord) => {
          if (t.id === o.task && TERMINAL_TASK.has(t.state)) resolve(t.stateReason ?? t.state);
        });
        pool!.on('event', (e) => {
          if (e.type === 'error' && e.fatal) reject(new Error(e.message));
        });
        hooks.signal?.addEventListener('abort', () => {
          coordinator.stopTask(o.task).catch(() => resolve('interrupted'));
        });
        coordinator.startTask(o.task).catch(reject);
      });
    } else {
      const evaluator = new RemoteVersionEvaluator(url, token, modelName, test, undefined, retry);
      stopReason = await remote!.follow(o.task, {
        rounds: o.rounds,
        target: o.targetAccuracy,
        evaluate: (version) => evaluator.evaluate(version),
        onRound: (r, own) => record(r, own),
        signal: hooks.signal,
      });
    }
  } finally {
    progress.stop();
    await pool?.stop();
    await app?.close();
  }

  const wallMs = Date.now() - t0;
  const results: Results = {
    config: publicConfig(o, {
      mode: o.url ? 'remote' : 'in-process',
      preset: preset ?? o.modelDir,
      plan,
      workers: pool?.workerCount,
      backend: pool?.backend,
      devices: devices.length,
      examplesPerDevice: devices.reduce((s, d) => s + d.train.length, 0) / devices.length,
    }),
    rounds: rows,
    summary: summarize(rows, o.targetAccuracy, wallMs, stopReason),
  };
  if (federated.length) (results as Results & { federated: unknown }).federated = federated;
  const out: SimulationResult = {
    results,
    pool: pool!.stats,
    workers: pool!.workerCount,
    backend: pool!.backend,
    trainingWallMs: Date.now() - trainingStart,
  };
  if (!hooks.noFiles) {
    out.outDir = o.out ?? defaultOutDir();
    out.files = await writeResults(out.outDir, results, {
      title: `FedAvg on ${o.data ?? 'MNIST'} (${o.modelDir ?? (o.model === 'cnn' ? 'CNN' : '2NN MLP')}, ${o.partition}${o.partition === 'dirichlet' ? ` α=${o.alpha}` : ''})`,
      subtitle: `${o.clients} devices, ${o.clientsPerRound} per round, E=${o.epochs}, B=${o.batchSize}, lr=${o.lr}` +
        (o.dropout ? `, dropout ${o.dropout}` : '') + (o.straggler ? `, stragglers ${o.straggler.probability}:${o.straggler.delayMs}ms` : '') +
        (o.attack ? `, attack ${o.attack.kind}` : ''),
      target: o.targetAccuracy,
    });
  }
  return out;
}
