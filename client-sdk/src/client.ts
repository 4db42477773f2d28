import { io, type Socket } from 'socket.io-client';
import {
  EvalInstructionSchema,
  FitInstructionSchema,
  FitUploadSchema,
  PROTOCOL_VERSION,
  RoundCancelSchema,
  SessionSchema,
  SimpleAckSchema,
  WireErrorSchema,
  TaskStateSchema,
  type ClientToServerEvents,
  type EvalInstruction,
  type FitInstruction,
  type ServerToClientEvents,
  type ClientPlan,
  type WireError,
} from '@flotilla/protocol';
import { getCodec } from '@flotilla/protocol';
import { ErrorFeedback } from '@flotilla/protocol';
import { clipInPlace } from '@flotilla/protocol';
import { bytesToFloat32, trainableLength } from '@flotilla/protocol';
import { MemoryStateStore, type DeviceStateStore } from './state/device-state-store.js';
import { DeviceVectors } from './state/device-vectors.js';
import { beginDrift } from './drift/drift-state.js';
import type { DataProvider } from './data.js';
import { Emitter } from './emitter.js';
import { silentLogger, type Logger } from '@flotilla/model';
import { LocalTrainer, type CustomTrain, type Fetcher } from './trainer.js';
import { SecAggClient } from './secagg/secagg-client.js';
import { uploadReport } from './report-upload.js';

export interface ClientHooks {
  /** Called when a valid fit instruction arrives, before the model is fetched (simulated device clocks start here). */
  instructed?(info: { taskId: string; round: number }): void;
  /** Called after local training, before the report is sent: 'drop' abandons the report (fault injection, user veto). */
  beforeReport?(info: { taskId: string; round: number }): Promise<'send' | 'drop'>;
  /**
   * Called after local training with the delta (w_local - w_global), before client-side
   * clipping and encoding; returns the delta to report instead (same length), or nothing to keep
   * it. May modify `delta` in place. For simulations (e.g. poisoned updates) and research;
   * a returned vector of another length fails the round locally.
   */
  transformDelta?(delta: Float32Array, info: { taskId: string; round: number; numExamples: number }): Float32Array | void;
}

export interface ClientOptions {
  /** Coordinator base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Device credential presented in the connection handshake and on artifact downloads. */
  token: string;
  taskId: string;
  /** Stable device id; the server assigns one when absent (kept for reconnects). */
  deviceId?: string;
  data: DataProvider;
  /**
   * The app's own training loop (see CustomTrain): called with the model holding the global
   * weights, the data and the round's plan; the SDK still downloads, computes the delta of the
   * trainable weights, clips, encodes, reports and keeps the heartbeat.
   */
  train?: CustomTrain;
  /** Share one trainer between devices of one thread to share one tfjs model. */
  trainer?: LocalTrainer;
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  hooks?: ClientHooks;
  logger?: Logger;
  /** Ack timeout for every emit. */
  ackTimeoutMs?: number;
  /** Backend name sent in the handshake (the entry resolves it). */
  backend?: string;
  /**
   * Where this device keeps state across rounds and restarts: SCAFFOLD's and FedDyn's per-device
   * vectors and the error-feedback residuals of lossy codecs. Default: memory (Node), IndexedDB
   * (browser entry, where available). Node apps that must resume after a restart pass a FileStateStore.
   */
  stateStore?: DeviceStateStore;
  /** Send reports over the coordinator's upload channel when it offers one (default true); false: always over the socket. */
  reportUpload?: boolean;
}

export interface FitEvent {
  round: number;
  numExamples: number;
  loss: number;
  bytesUp: number;
  bytesDown: number;
  trainMs: number;
}

export interface ClientEvents {
  connected: (e: { deviceId: string; sessionId: string }) => void;
  disconnected: (e: { reason: string }) => void;
  fit: (e: FitEvent) => void;
  eval: (e: { round: number; numExamples: number; metrics: Record<string, number> }) => void;
  rejected: (e: { round: number; error: WireError }) => void;
  error: (e: unknown) => void;
  'task:state': (e: { state: string; reason?: string }) => void;
  /** Secure aggregation: a protocol message this device sent (docs/secure-aggregation.md). */
  secagg: (e: { round: number; phase: 'keys' | 'shares' | 'unmask' }) => void;
  [k: string]: (arg: any) => void;
}

/** Handshake refusals that no retry can fix: `start()` rejects and the client stops. Others (throttling) are retried. */
const FATAL: ReadonlySet<string> = new Set([
  'FL_ERR_AUTH_INVALID_TOKEN',
  'FL_ERR_AUTH_REQUIRED',
  'FL_ERR_AUTH_FORBIDDEN',
  'FL_ERR_PROTO_VERSION_MISMATCH',
  'FL_ERR_PROTO_INVALID_MESSAGE',
  'FL_ERR_TASK_NOT_FOUND',
  'FL_ERR_CLIENT_BOUND',
  'FL_ERR_CLIENT_REVOKED',
]);

/** The error a refused handshake rejects `start()` with. */
export class ClientError extends Error {
  constructor(readonly wire: WireError) {
    super(`${wire.code}: ${wire.message}`);
  }
}

/**
 * A device. `start()` connects with its credentials in the socket.io handshake `auth` (protocol
 * version, token, task, device id) and resolves once the server's `session` event arrives;
 * a refused handshake (`connect_error` carrying a coded error) rejects it when no retry can help;
 * afterwards the client follows instructions until `stop()`: fit instructions download
 * the global weights of the named version over HTTP, train locally, and report the delta in the
 * plan's codec; eval instructions evaluate on local held-out data. Every incoming message is
 * validated; invalid ones are dropped and reported through 'error'. Transport loss reconnects
 * with jittered exponential backoff (socket.io's randomisation) and presents the same deviceId in
 * the new handshake; a handshake refused for a passing reason (FL_ERR_AUTH_THROTTLED) is retried
 * after the delay the server names. Heartbeats flow at the interval the server names, also during local training.
 */
export class BaseClient extends Emitter<ClientEvents> {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;
  protected readonly trainer: LocalTrainer;
  protected readonly logger: Logger;
  private readonly ackTimeoutMs: number;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private id: string | undefined;
  private currentRound = 0;
  private cancelled = new Set<number>();
  /** Upload URLs offered by `fit:upload`, per round (report-upload.ts). */
  private readonly uploads = new Map<number, string>();
  private stopped = true;
  private feedback: ErrorFeedback | null = null;
  private readonly secagg = new SecAggClient({
    emitWithAck: (event, payload) => {
      if (!this.socket?.connected) return Promise.reject(new Error('not connected'));
      return this.socket.timeout(this.ackTimeoutMs).emitWithAck(event, payload);
    },
    onError: (err) => this.emit('error', err),
    onPhase: (e) => this.emit('secagg', e),
  });
  protected readonly stateStore: DeviceStateStore;
  /**
   * Settles when the previous fit has written (or given up) its per-device state. A round's
   * instruction may arrive before the ack of this device's report for the round before (the
   * coordinator starts the next round while answering the last report), so a fit reads state only
   * after the previous fit is over.
   */
  private stateTurn: Promise<void> = Promise.resolve();

  constructor(protected readonly opts: ClientOptions) {
    super();
    this.trainer = opts.trainer ?? new LocalTrainer({ logger: opts.logger });
    this.logger = opts.logger ?? silentLogger;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 30_000;
    this.id = opts.deviceId;
    this.stateStore = opts.stateStore ?? new MemoryStateStore();
  }

  get deviceId(): string | undefined {
    return this.id;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  start(): Promise<void> {
    if (!this.stopped) return Promise.resolve();
    this.stopped = false;
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(this.opts.url, {
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: this.opts.reconnect?.initialDelayMs ?? 500,
      reconnectionDelayMax: this.opts.reconnect?.maxDelayMs ?? 10_000,
      randomizationFactor: 0.5,
      autoConnect: false,
      // A function, so that every (re)connection presents the device id the server assigned.
      auth: (cb) => cb(this.handshakeAuth()),
    });
    this.socket = socket;
    socket.on('fit:instruction', (m) => void this.onFit(m));
    socket.on('fit:upload', (m) => {
      const p = FitUploadSchema.safeParse(m);
      if (!p.success || p.data.taskId !== this.opts.taskId) return;
      for (const r of this.uploads.keys()) if (r < p.data.round) this.uploads.delete(r);
      this.uploads.set(p.data.round, p.data.url);
    });
    socket.on('eval:instruction', (m) => void this.onEval(m));
    socket.on('round:cancel', (m) => {
      const p = RoundCancelSchema.safeParse(m);
      if (p.success) {
        this.cancelled.add(p.data.round);
        this.secagg.end(p.data.round);
      }
    });
    socket.on('secagg', (m) => this.secagg.onMessage(m));
    socket.on('task:state', (m) => {
      const p = TaskStateSchema.safeParse(m);
      if (p.success) this.emit('task:state', { state: p.data.state, reason: p.data.reason });
    });
    socket.on('disconnect', (reason) => {
      this.stopHeartbeat();
      this.emit('disconnected', { reason });
    });
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let refusals = 0;
      socket.on('session', (m) => {
        const p = SessionSchema.safeParse(m);
        if (!p.success) {
          this.emit('error', new Error(`invalid session message: ${p.error.message}`));
          return;
        }
        refusals = 0;
        this.id = p.data.deviceId;
        this.startHeartbeat(p.data.heartbeatIntervalMs);
        this.emit('connected', { deviceId: p.data.deviceId, sessionId: p.data.sessionId });
        if (!settled) {
          settled = true;
          resolve();
        }
      });
      socket.on('connect_error', (err: Error & { data?: unknown }) => {
        const wire = WireErrorSchema.safeParse(err.data);
        if (!wire.success) {
          this.emit('error', err); // a transport failure: socket.io reconnects by itself
          return;
        }
        const e = new ClientError(wire.data as WireError);
        this.emit('error', e);
        if (FATAL.has(wire.data.code)) {
          void this.stop();
          if (!settled) {
            settled = true;
            reject(e);
          }
          return;
        }
        // Refused by the server's handshake check: socket.io does not retry those by itself.
        const retryAfter = (wire.data.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
        const base = this.opts.reconnect?.initialDelayMs ?? 500;
        const delay = retryAfter ? retryAfter * 1000 : Math.min(this.opts.reconnect?.maxDelayMs ?? 10_000, base * 2 ** refusals++) * (0.5 + Math.random());
        setTimeout(() => {
          if (!this.stopped && this.socket === socket && !socket.connected) socket.connect();
        }, delay);
      });
      socket.connect();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopHeartbeat();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.removeAllListeners();
      s.disconnect();
    }
  }

  /** The socket.io handshake `auth` (docs/api.md, "Device connection"). */
  private handshakeAuth(): Record<string, unknown> {
    return {
      protocolVersion: PROTOCOL_VERSION,
      token: this.opts.token,
      taskId: this.opts.taskId,
      ...(this.id ? { deviceId: this.id } : {}),
      ...(this.opts.backend ? { backend: this.opts.backend } : {}),
    };
  }

  private startHeartbeat(ms: number): void {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      const s = this.socket;
      if (s?.connected) s.timeout(this.ackTimeoutMs).emit('heartbeat', { t: Date.now() }, () => undefined);
    }, ms);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private fetcher(): Fetcher {
    const base = this.opts.url;
    const headers = { authorization: `Bearer ${this.opts.token}` };
    const get = async (path: string) => {
      const res = await fetch(new URL(path, base), { headers });
      if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
      return res;
    };
    return {
      json: async (path) => (await get(path)).json(),
      bytes: async (path) => new Uint8Array(await (await get(path)).arrayBuffer()),
    };
  }

  private async onFit(raw: unknown): Promise<void> {
    const parsed = FitInstructionSchema.safeParse(raw);
    if (!parsed.success) {
      this.emit('error', new Error(`invalid fit instruction: ${parsed.error.message}`));
      return;
    }
    const ins: FitInstruction = parsed.data;
    this.currentRound = ins.round;
    this.opts.hooks?.instructed?.({ taskId: ins.taskId, round: ins.round });
    const isStale = () => this.stopped || this.currentRound !== ins.round || this.cancelled.has(ins.round);
    // Secure aggregation: keys go out now, while the device trains; the update is masked, not encoded.
    const secure = ins.plan.secureAggregation ? this.secagg.begin(ins.taskId, ins.round, ins.plan.secureAggregation) : null;
    // Per-device state changed by this round (drift correction, error feedback): written only once the report is accepted.
    const vectors = DeviceVectors.for(this.stateStore, this.id ?? 'device', ins.taskId);
    const previous = this.stateTurn;
    let release!: () => void;
    this.stateTurn = new Promise<void>((r) => (release = r));
    try {
      const fetcher = this.fetcher();
      const loaded = await this.trainer.load(ins.modelUrl, fetcher);
      const weightBytes = await this.trainer.weights(ins.weightsUrl, fetcher);
      const global = bytesToFloat32(weightBytes);
      const data = await this.opts.data.train();
      await previous;
      const drift = await beginDrift(vectors, ins.plan.driftCorrection, ins.control, trainableLength(loaded.manifest));
      const out = await this.trainer.fit(loaded, global, data, ins.plan, isStale, this.opts.train, drift?.correction ?? null);
      if (isStale()) return;
      const controlDelta = drift?.finish(out.delta, out.steps, ins.plan.learningRate);
      const delta = this.opts.hooks?.transformDelta?.(out.delta, { taskId: ins.taskId, round: ins.round, numExamples: out.numExamples }) ?? out.delta;
      if (delta.length !== out.delta.length) throw new RangeError(`transformDelta returned ${delta.length} values, expected ${out.delta.length}`);
      const encoded = secure ? await secure.maskedInput(delta, out.numExamples, out.metrics) : await this.encode(delta, out.metrics, ins.plan, vectors, 'delta');
      const control = controlDelta ? await this.encode(controlDelta, out.metrics, ins.plan, vectors, 'control') : undefined;
      const bytesUp = encoded.byteLength + (control?.byteLength ?? 0);
      const verdict = (await this.opts.hooks?.beforeReport?.({ taskId: ins.taskId, round: ins.round })) ?? 'send';
      if (verdict === 'drop' || isStale() || !this.socket?.connected) return;
      const meta = { numExamples: out.numExamples, metrics: out.metrics, codec: ins.plan.codec };
      // The upload channel when the coordinator offered it (no fit:ready: the server reads the body once a slot is free).
      const offer = !secure && !control && this.opts.reportUpload !== false ? this.uploads.get(ins.round) : undefined;
      this.uploads.delete(ins.round);
      const uploaded = offer ? await uploadReport(this.opts.url, offer, meta, encoded, Math.max(this.ackTimeoutMs, ins.deadline - Date.now() + 5_000)) : null;
      if (uploaded && 'fallBack' in uploaded) this.logger.info(`[flotilla] round ${ins.round}: report upload not taken (${uploaded.fallBack}); sending it over the socket`);
      if (uploaded && !('fallBack' in uploaded)) return void (await this.reported(ins, uploaded, out, bytesUp, weightBytes.byteLength, vectors));
      if (isStale() || !this.socket?.connected) return;
      // Wait for an upload slot (the coordinator bounds concurrent uploads); the ack may take until the deadline.
      const slotWait = Math.max(this.ackTimeoutMs, ins.deadline - Date.now() + 5_000);
      const ready = SimpleAckSchema.parse(
        await this.socket.timeout(slotWait).emitWithAck('fit:ready', { taskId: ins.taskId, round: ins.round, bytes: bytesUp }),
      );
      if (!ready.ok) {
        this.emit('rejected', { round: ins.round, error: ready.error as WireError });
        return;
      }
      if (isStale() || !this.socket?.connected) return;
      const sent = secure
        ? this.socket.timeout(this.ackTimeoutMs).emitWithAck('secagg:masked', { taskId: ins.taskId, round: ins.round, masked: encoded })
        : this.socket.timeout(this.ackTimeoutMs).emitWithAck('fit:report', { taskId: ins.taskId, round: ins.round, ...meta, delta: encoded, ...(control ? { control } : {}) });
      await this.reported(ins, SimpleAckSchema.parse(await sent) as { ok: true } | { ok: false; error: WireError }, out, bytesUp, weightBytes.byteLength, vectors);
    } catch (err) {
      this.logger.warn(`[flotilla] round ${ins.round} failed locally: ${String(err)}`);
      this.emit('error', err);
      if (!isStale() && this.socket?.connected) {
        this.socket.timeout(this.ackTimeoutMs).emit('fit:failure', { taskId: ins.taskId, round: ins.round, reason: String(err).slice(0, 1000) }, () => undefined);
      }
    } finally {
      release();
    }
  }

  /** The coordinator answered the report (socket ack or upload answer): keep this round's device state and tell the app, or say why it was refused. */
  private async reported(ins: FitInstruction, ack: { ok: true } | { ok: false; error: WireError }, out: { numExamples: number; metrics: Record<string, number>; trainMs: number }, bytesUp: number, bytesDown: number, vectors: DeviceVectors): Promise<void> {
    if (!ack.ok) return void this.emit('rejected', { round: ins.round, error: ack.error });
    await vectors.commit();
    this.emit('fit', { round: ins.round, numExamples: out.numExamples, loss: out.metrics.loss ?? NaN, bytesUp, bytesDown, trainMs: out.trainMs });
  }

  /**
   * Encode a delta (`part` 'delta', clipped first for client-side DP) or a control delta in the
   * plan's codec. Lossy codecs (topk, int8) go through this device's error feedback, its residual
   * kept per part in the device-state store, so what one round drops is sent in a later one.
   */
  private async encode(delta: Float32Array, metrics: Record<string, number>, plan: ClientPlan, vectors: DeviceVectors, part: 'delta' | 'control'): Promise<Uint8Array> {
    if (part === 'delta' && plan.clipNorm !== undefined) {
      const { clipped } = clipInPlace(delta, plan.clipNorm);
      metrics.dpNormBelowClip = clipped ? 0 : 1;
    }
    const codec = getCodec(plan.codec);
    const options = { ...(plan.topkFraction ? { fraction: plan.topkFraction } : {}), ...(plan.codec === 'int8' ? { random: Math.random } : {}) };
    if (plan.codec !== 'topk' && plan.codec !== 'int8') return codec.encode(delta, options);
    const key = `feedback.${part}`;
    const feedback = new ErrorFeedback(delta.length);
    const residual = await vectors.load(key, delta.length);
    if (residual) feedback.importState(residual);
    const bytes = feedback.encode(codec, delta, options);
    vectors.stage(key, feedback.exportState());
    return bytes;
  }

  private async onEval(raw: unknown): Promise<void> {
    const parsed = EvalInstructionSchema.safeParse(raw);
    if (!parsed.success) {
      this.emit('error', new Error(`invalid eval instruction: ${parsed.error.message}`));
      return;
    }
    const ins: EvalInstruction = parsed.data;
    if (!this.opts.data.evaluate) return;
    try {
      const fetcher = this.fetcher();
      const loaded = await this.trainer.load(ins.modelUrl, fetcher);
      const global = bytesToFloat32(await this.trainer.weights(ins.weightsUrl, fetcher));
      const data = await this.opts.data.evaluate();
      const out = await this.trainer.evaluate(loaded, global, data, ins.batchSize, { loss: ins.loss, metrics: ins.metrics });
      if (this.stopped || !this.socket?.connected) return;
      const ack = SimpleAckSchema.parse(
        await this.socket.timeout(this.ackTimeoutMs).emitWithAck('eval:report', { taskId: ins.taskId, round: ins.round, numExamples: out.numExamples, metrics: out.metrics }),
      );
      if (ack.ok) this.emit('eval', { round: ins.round, numExamples: out.numExamples, metrics: out.metrics });
      else this.emit('rejected', { round: ins.round, error: ack.error as WireError });
    } catch (err) {
      this.emit('error', err);
    }
  }
}
