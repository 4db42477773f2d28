/** @flotilla/simulator: programmatic entry (the CLI is src/cli.ts, bin flotilla-sim). */
export { runSimulation, buildDevices, simData, taskPlan, type SimulationHooks, type SimulationResult } from './simulation.js';
export { parseCliOptions, SimOptionsSchema, CliUsageError, DEMO_DEFAULTS, USAGE, type SimOptions } from './cli-options.js';
export { DevicePool, defaultWorkerCount, type DevicePoolOptions, type PoolStats } from './device-pool.js';
export type { DeviceSpec, FaultConfig, SharedSplit, WorkerEvent } from './device-messages.js';
export { loadMnist, labelHistogram, parseIdxImages, parseIdxLabels, MNIST_INPUT_SIZE, MNIST_CLASSES, type Mnist, type MnistSplit } from './mnist.js';
export { partition, iid, shards, dirichlet, sortByLabel, PARTITIONS, type PartitionName, type PartitionOptions } from './partition.js';
export { createCentralEvaluator, RemoteVersionEvaluator, type TestSet } from './central-evaluator.js';
export { RemoteCoordinator } from './remote-coordinator.js';
export { writeResults, roundRowFromRecord, summarize, toCsv, accuracySvg, defaultOutDir, CSV_COLUMNS, type Results, type RoundRow, type RunSummary } from './results.js';
export { renderAccuracyChart, niceTicks, type ChartSeries, type AccuracyChartOptions } from './svg-chart.js';
export { createProgress, roundLine, type RoundProgress } from './progress.js';
export { createRng, deriveSeed, type Rng } from './rng.js';
export { loadDataFile, type SimData, type SimSplit, type DataFileOptions } from './data-file.js';
