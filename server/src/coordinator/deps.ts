import type { EventEmitter } from 'node:events';
import type { ModelSpec } from '@flotilla/protocol';
import type { Registry } from '../registry/registry.js';
import type { VersionRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { DeviceChannel } from './device-channel.js';
import type { RoundCluster } from './round-cluster.js';

/** Server-side test-set evaluation of a candidate global model; returns e.g. { accuracy, loss }. */
export type CentralEvaluator = (weights: Float32Array, spec: ModelSpec) => Promise<Record<string, number>>;

export interface CoordinatorStats {
  roundsStarted: number;
  roundsCommitted: number;
  roundsFailed: number;
  reportsAccepted: number;
  /** Of those, reports received over the HTTP upload channel (coordinator/report-upload.ts). */
  reportsUploaded: number;
  /** Rejections by error code (socket validation included). */
  rejected: Record<string, number>;
}

export interface CoordinatorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What task runners need from the coordinator. */
export interface CoordinatorDeps {
  store: Store;
  /** Publishes versions (artifacts, variants) and reads weights back. */
  registry: Registry;
  /** How runners reach devices (the outbound interface: local sessions, or the cluster's adapter). */
  devices: DeviceChannel;
  /** Present when this coordinator is one node of a cluster (docs/cluster.md). */
  cluster?: RoundCluster;
  /** Emits 'round' (RoundRecord), 'task' (TaskRecord), 'evaluation'. */
  events: EventEmitter;
  evaluator?: CentralEvaluator;
  /** Called after a version is committed (variants, caches). Must not throw for the round's sake. */
  onPublished?: (v: VersionRecord, weights: Float32Array) => Promise<void>;
  logger: CoordinatorLogger;
  stats: CoordinatorStats;
  /** Transport memory allowed for uploads in flight; slots per round = budget / update size, clamped to [2, 64]. */
  uploadBudgetBytes: number;
  /** How long a selected device that disconnected may take to come back before it counts as dropped. */
  reconnectGraceMs: number;
  /** Offer the HTTP report upload channel to devices (fit:upload); false: socket reports only. */
  reportUploads: boolean;
}
