import type { ModelSpec, TaskPlan } from '@flotilla/protocol';
import type { RoundState } from '../fl/round-state.js';

/** Persistent records. Every Store implementation stores and returns exactly these shapes. */
export type TaskState = 'created' | 'running' | 'paused' | 'stopped' | 'done' | 'failed';

export interface TaskRecord {
  id: string;
  /** The registered model this task publishes to (same name as the task by default). */
  modelName: string;
  spec: ModelSpec;
  plan: TaskPlan;
  state: TaskState;
  /** Latest committed version of modelName produced by this task (the initial weights are version 1). */
  currentVersion: number;
  /** Number the next round will get; rounds are numbered per task from 1, failed ones included. */
  nextRound: number;
  /** Server-optimizer state of the strategy (momentum, moments), for resume. */
  strategyState?: unknown;
  /** Update screening's recent accepted L2 norms (oldest first), for resume; absent without screening. */
  screeningState?: number[];
  stateReason?: string;
  createdAt: number;
  updatedAt: number;
}

export interface RoundRejection {
  clientId: string;
  code: string;
  at: number;
}

export interface RoundRecord {
  taskId: string;
  round: number;
  state: RoundState;
  /** Version the clients trained from. */
  baseVersion: number;
  /** Version this round produced, once committed. */
  committedVersion?: number;
  selected: string[];
  reported: string[];
  rejected: RoundRejection[];
  /** Selected devices that disconnected or reported failure before reporting. */
  dropped: string[];
  startedAt: number;
  endedAt?: number;
  deadline: number;
  failureReason?: string;
  /** Aggregated client training metrics (loss, accuracy, participants, examples). */
  trainMetrics: Record<string, number>;
  /** Federated evaluation of the committed version (weighted by examples). */
  evalMetrics: Record<string, number>;
  /** Server-side test-set evaluation of the committed version. */
  centralMetrics: Record<string, number>;
  bytesUp: number;
  bytesDown: number;
  /** Aggregation + commit time, ms. */
  aggregationMs?: number;
  /** Secure aggregation rounds: phases, who dropped when, whether unmasking succeeded (docs/secure-aggregation.md). */
  secureAggregation?: SecAggRoundView;
}

export type SecAggPhase = 'advertise' | 'share' | 'masked' | 'unmask' | 'done' | 'failed';

/** What the round view shows of a secure-aggregation round (stored with the round record). */
export interface SecAggRoundView {
  protocol: 'secagg' | 'secagg+';
  threshold: number;
  /** Neighbours per device (n - 1 for SecAgg); null until keys are in. */
  degree: number | null;
  phases: Array<{ phase: SecAggPhase; startedAt: number; endedAt: number | null; devices: number }>;
  /** Devices that dropped out, by the phase they did not complete. */
  dropped: Partial<Record<SecAggPhase, string[]>>;
  outcome: 'pending' | 'unmasked' | 'failed';
  reason?: string;
  /** Secure-aggregation bytes (keys, shares, masked inputs) received and relayed. */
  bytesUp: number;
  bytesDown: number;
  unmaskMs?: number;
}


export interface ArtifactRef {
  /** e.g. 'weights' (flat float32), 'weights.float16', 'weights.int8', 'weights.pruned' */
  name: string;
  sha256: string;
  size: number;
}

export interface ModelRecord {
  name: string;
  createdAt: number;
  description?: string;
}

export interface VersionRecord {
  model: string;
  version: number;
  createdAt: number;
  taskId?: string;
  round?: number;
  /** The version this one came from: `parentVersion` of `parentModel` (this model when absent). */
  parentVersion?: number;
  /** Set when the parent is a version of another model (a task fine-tuned from a registry version). */
  parentModel?: string;
  /** The tfjs model (topology and weights manifest); absent on ONNX versions. */
  spec?: ModelSpec;
  /** Set on ONNX versions (artifact `model.onnx`): the signature read from the model at import. */
  onnx?: OnnxSignature;
  metrics: Record<string, number>;
  artifacts: ArtifactRef[];
  tags: string[];
  description?: string;
  archived: boolean;
}

/** Inputs and outputs of an ONNX model (shapes with -1 for the batch dimension), as read at import. */
export interface OnnxSignature {
  irVersion: number;
  opset: number;
  producer: string;
  inputs: Array<{ name: string; elemType: string; shape: number[] }>;
  outputs: Array<{ name: string; elemType: string; shape: number[] }>;
  opTypes: string[];
}

export interface AliasRecord {
  model: string;
  alias: string;
  version: number;
  updatedAt: number;
  updatedBy: string;
}

/** What an alias move was: a plain set/move (commits moving `latest` included), a delete, or a rollback. */
export type AliasAction = 'set' | 'delete' | 'rollback';

export interface AliasHistoryRecord {
  model: string;
  alias: string;
  from: number | null;
  to: number | null;
  at: number;
  by: string;
  /** Absent in records written before it existed; read as 'set' (or 'delete' when `to` is null). */
  action?: AliasAction;
}

export interface ClientRecord {
  id: string;
  taskId: string;
  firstSeen: number;
  lastSeen: number;
  roundsJoined: number;
  reportsAccepted: number;
  reportsRejected: number;
  revoked: boolean;
  /**
   * The credential the device id is bound to: the id of the token it first connected with, null
   * for the bootstrap device token; absent on records made before binding existed (bound at
   * their next handshake). Handshakes for this id with another credential are refused.
   */
  tokenId?: string | null;
}

/**
 * Role a credential grants: `admin` everything, `viewer` read-only admin API, `device` a device of
 * one task (and that task's model), `inference` inference and bandit feedback (docs/api.md).
 */
/** `serving`: what serving replicas and sidecars present upstream (docs/deploy.md): read the registry, deployments and the live channel; post edge reports; introspect callers' tokens. */
export type TokenRole = 'admin' | 'viewer' | 'device' | 'inference' | 'serving';

/**
 * An API or enrolment token. Only the sha256 of the secret is stored (hex); the secret itself is
 * shown once, at creation. `taskId` scopes device tokens to one task; `endpoints` scopes inference
 * tokens to those deployments or models (absent: every endpoint).
 */
export interface TokenRecord {
  id: string;
  hash: string;
  role: TokenRole;
  taskId?: string;
  endpoints?: string[];
  name?: string;
  createdAt: number;
  createdBy: string;
  /** Epoch ms after which the token is refused; absent: never expires. */
  expiresAt?: number;
  revoked: boolean;
  revokedAt?: number;
}

// ---- serving (deployments, payload log, drift reference) ----

/** One routed target of a deployment: a version number ("3") or an alias, optionally a weights variant. */
export interface DeploymentTarget {
  ref: string;
  /** 'float32' (default), 'float16', 'int8', 'pruned'. */
  variant?: string;
  /** Split weight (split mode only); relative, need not sum to 1. */
  weight?: number;
}

/** How a deployment picks the version that serves a request (see server/src/serving/router.ts). */
export type DeploymentRouting =
  | { mode: 'split'; targets: DeploymentTarget[]; sticky?: boolean }
  | { mode: 'bandit'; algorithm: 'thompson' | 'ucb1'; targets: DeploymentTarget[] }
  | { mode: 'shadow'; primary: DeploymentTarget; shadow: DeploymentTarget; percent: number };

/** Dynamic batching of the versions a deployment routes to. */
export interface BatchingConfig {
  maxBatchSize: number;
  maxQueueDelayMs: number;
  maxQueueSize: number;
  timeoutMs: number;
  /**
   * 'adaptive' (default): a partial batch runs at once when an instance is idle and waits up to
   * maxQueueDelayMs only while that measurably raises throughput; 'fixed': always wait (Triton's).
   */
  delay?: 'adaptive' | 'fixed';
  /** Worker-thread model instances; 0 (default) runs inference on the main thread. */
  instances?: number;
}

/**
 * Who may send a deployment bandit feedback (admin tokens always may): `callers`, whoever may run
 * inference on it (inference tokens whose scope admits it; anyone with publicInference);
 * `tokens`, only the issued tokens listed by id; `admin`, nobody else.
 */
export type FeedbackPolicy = { allow: 'callers' } | { allow: 'admin' } | { allow: 'tokens'; tokenIds: string[] };

/** A named inference endpoint over one model. */
export interface DeploymentRecord {
  name: string;
  model: string;
  routing: DeploymentRouting;
  batching?: Partial<BatchingConfig>;
  /** Absent: `{ allow: 'callers' }`. */
  feedback?: FeedbackPolicy;
  /** Learned routing state (bandit arms), written by serving; opaque to stores. */
  state?: unknown;
  description?: string;
  createdAt: number;
  updatedAt: number;
}

/** A sampled inference request and its answer. Data are row-major with their shapes. */
export interface PayloadRecord {
  model: string;
  version: number;
  requestId: string;
  /** The deployment that routed the request, when one did. */
  deployment?: string;
  /** The weights that answered when not the version's own: a variant or its distilled student (serving.ts). */
  variant?: string;
  at: number;
  input: { shape: number[]; data: number[] };
  output: { shape: number[]; data: number[] };
  latencyMs: number;
  /** Rows the request had when only its first rows were logged (large batches are cut to bound the log). */
  truncatedFrom?: number;
}

/** Per-feature statistics of a version's inputs: the reference the drift summary compares logged inputs with. */
export interface InputStatsRecord {
  model: string;
  version: number;
  count: number;
  mean: number[];
  variance: number[];
  /** Where they came from: 'publish' (recorded by the publisher) or 'confirmed-window' (logged payloads an operator confirmed). */
  source: string;
  createdAt: number;
}
