import type { Attack } from './attack.js';

/**
 * What the device pool (main thread) and its device workers say to each other. Datasets travel
 * as typed arrays over SharedArrayBuffers (shared, never copied); each device carries only its
 * index arrays.
 */
export interface SharedSplit {
  x: Float32Array;
  /** Class ids, or `labelSize` real values per row. */
  y: Uint8Array | Float32Array;
}

export interface DeviceSpec {
  deviceId: string;
  /** Rows of `train` this device trains on. */
  train: Uint32Array;
  /** Rows of `test` this device evaluates on (federated evaluation); none when absent. */
  eval?: Uint32Array;
  /** Reports poisoned updates (FaultConfig.attack); set by the pool. */
  attacker?: boolean;
}

export interface FaultConfig {
  /** Probability that a device, after training, vanishes instead of reporting. */
  dropout: number;
  straggler?: { probability: number; delayMs: number };
  /** A vanished device comes back after a delay drawn uniformly from this range (ms). */
  rejoinMs: [number, number];
  /** Model poisoning by a fixed fraction of the devices (see attack.ts). */
  attack?: Attack;
}

/** Where devices connect and what data they hold: given to the pool and handed on to each worker. */
export interface DeviceFleet {
  url: string;
  token: string;
  taskId: string;
  train: SharedSplit;
  test?: SharedSplit;
  inputSize: number;
  numClasses: number;
  /** Values per label row (default 1) and how labels are given (default: class ids). */
  labelSize?: number;
  labels?: 'classIds' | 'values';
  devices: DeviceSpec[];
}

export interface WorkerInit extends DeviceFleet {
  workerIndex: number;
  faults: FaultConfig;
  seed: number;
  /** Log SDK warnings to stderr. */
  verbose: boolean;
}

export type WorkerEvent =
  | { type: 'ready'; devices: number; backend: string }
  | { type: 'fit'; deviceId: string; round: number; numExamples: number; loss: number; bytesUp: number; bytesDown: number; trainMs: number }
  | { type: 'eval'; deviceId: string; round: number; numExamples: number; accuracy: number }
  | { type: 'fault'; kind: 'dropout' | 'straggler' | 'rejoin' | 'attack'; deviceId: string; round: number }
  | { type: 'rejected'; deviceId: string; round: number; code: string }
  | { type: 'error'; deviceId?: string; message: string; fatal?: boolean }
  | { type: 'stopped' };

export type PoolCommand = { type: 'stop' };
