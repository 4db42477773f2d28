import {
  bytesToWords,
  decodeSum,
  maskedLength,
  neighbourGraph,
  PUBLIC_KEYS_BYTES,
  SEALED_PAIR_BYTES,
  SHARE_BYTES,
  addMod,
  type DecodedSum,
  type SecAggClientConfig,
  type SecAggDown,
  type SecureAggregation,
  type Share,
} from '@flotilla/protocol';
import { AppError } from '../../errors.js';
import { degreeOf } from './secagg-plan.js';
import { unmask, UnmaskError } from './unmask.js';
import { SecAggView, type SecAggPhase } from './secagg-view.js';

/** What a SecAggRound needs from the task runner (coordinator/round-loop.ts, task-runner.ts). */
export interface SecAggHost {
  taskId: string;
  round: number;
  /** Send to a device; false when it has no session. */
  send(deviceId: string, msg: SecAggDown): boolean;
  /** Unmasking succeeded: the weighted mean of the survivors' updates. */
  done(result: DecodedSum, survivors: string[]): void;
  /** The round cannot finish (too few devices or shares): it fails, the model is unchanged. */
  fail(reason: string): void;
  random(): number;
  /** Epoch ms by which masked inputs are due (the round deadline). */
  deadline: number;
  /** Masked inputs that close the round early (the plan's clientsPerRound); over-selected stragglers then count as dropped. */
  enough: number;
}

/**
 * The coordinator's side of one SecAgg/SecAgg+ round (Bonawitz et al., CCS 2017; Bell et al.,
 * CCS 2020; docs/secure-aggregation.md). It relays and never decrypts: keys are advertised
 * (U1), encrypted share pairs relayed along the neighbour graph (U2), masked inputs folded into
 * one running sum mod 2^32 as they arrive (U3, memory O(model)), and the shares survivors reveal
 * (U4) rebuild exactly the masks that do not cancel. Each key phase and unmasking ends when every
 * device still in it answered, or after `phaseTimeoutMs`; masked input is due by the round
 * deadline. Fewer than `threshold` devices at any phase fail the round.
 */
export class SecAggRound {
  phase: SecAggPhase = 'advertise';
  readonly view: SecAggView;
  private readonly expected: Set<string>;
  private readonly keys = new Map<string, Uint8Array>();
  private readonly index = new Map<string, number>();
  private ids: string[] = [];
  private graph: number[][] = [];
  private readonly sealed = new Map<string, Uint8Array>();
  /** By receiver index: the senders whose share pairs it was given. */
  private readonly receivedFrom = new Map<number, number[]>();
  private sum: Uint32Array;
  private readonly inputs = new Set<string>();
  private survivors: number[] = [];
  private droppedIdx: number[] = [];
  private readonly seedShares = new Map<number, Share[]>();
  private readonly keyShares = new Map<number, Share[]>();
  private readonly revealed = new Set<string>();
  /** Devices that left (disconnected or failed): dropped from every later phase at once. */
  private readonly left = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly length: number;

  constructor(
    private readonly host: SecAggHost,
    private readonly cfg: SecureAggregation,
    readonly client: SecAggClientConfig,
    selected: readonly string[],
    readonly modelLength: number,
  ) {
    this.expected = new Set(selected);
    this.length = maskedLength(modelLength, client);
    this.sum = new Uint32Array(this.length);
    this.view = new SecAggView(cfg);
    this.view.enter('advertise', selected.length);
    this.arm();
  }

  /** Bytes of the masked vector a device sends. */
  get maskedBytes(): number {
    return 4 * this.length;
  }

  /** Largest `secagg` message a device may send in this round (its sealed shares to every neighbour). */
  get maxMessageBytes(): number {
    return 4096 + SEALED_PAIR_BYTES * this.expected.size + 2 * SHARE_BYTES * this.expected.size;
  }

  private arm(): void {
    this.disarm();
    // Masked inputs are due by the round deadline (at once if the key phases ran past it).
    const ms = this.phase === 'masked' ? Math.max(0, this.host.deadline - Date.now()) : this.cfg.phaseTimeoutMs;
    this.timer = setTimeout(() => void this.advance(), ms);
    this.timer.unref?.();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  dispose(): void {
    this.disarm();
    this.phase = 'failed';
  }

  private refuse(why: string): never {
    throw new AppError('FL_ERR_SECAGG_WRONG_PHASE', { phase: this.phase, why });
  }

  private bad(why: string): never {
    throw new AppError('FL_ERR_SECAGG_BAD_MESSAGE', { phase: this.phase, why });
  }

  /** A device message of phase keys/shares/unmask (validated by the gateway). */
  async receive(deviceId: string, phase: 'keys' | 'shares' | 'unmask', data: Uint8Array): Promise<void> {
    const want = { keys: 'advertise', shares: 'share', unmask: 'unmask' }[phase];
    if (this.phase !== want) this.refuse(`${phase} arrived during ${this.phase}`);
    if (!this.expected.has(deviceId)) this.refuse('this device is not (or no longer) part of this phase');
    if (phase === 'keys') {
      if (data.length !== PUBLIC_KEYS_BYTES) this.bad(`keys are ${PUBLIC_KEYS_BYTES} bytes`);
      if (this.keys.has(deviceId)) this.refuse('keys already advertised');
      this.keys.set(deviceId, data.slice());
    } else if (phase === 'shares') {
      const u = this.index.get(deviceId)!;
      if (data.length !== SEALED_PAIR_BYTES * this.graph[u - 1].length) this.bad(`expected ${this.graph[u - 1].length} sealed share pairs`);
      if (this.sealed.has(deviceId)) this.refuse('shares already sent');
      this.sealed.set(deviceId, data.slice());
    } else {
      this.takeReveal(deviceId, data);
    }
    this.view.bytesUp += data.length;
    this.expectedAnswered();
  }

  /** A masked input (after an ok fit:ready): folded into the running sum at once. */
  addMasked(deviceId: string, bytes: Uint8Array): void {
    if (this.phase !== 'masked') this.refuse(`masked input arrived during ${this.phase}`);
    if (!this.expected.has(deviceId)) this.refuse('this device did not share its keys in this round');
    if (this.inputs.has(deviceId)) throw new AppError('FL_ERR_ROUND_DUPLICATE_REPORT', { round: this.host.round });
    if (bytes.length !== this.maskedBytes) this.bad(`masked input is ${this.maskedBytes} bytes`);
    addMod(this.sum, bytesToWords(bytes));
    this.inputs.add(deviceId);
    this.view.bytesUp += bytes.length;
    if (this.inputs.size >= this.host.enough) void this.advance();
    else this.expectedAnswered();
  }

  /** A device left (after the reconnect grace) or failed. */
  gone(deviceId: string): void {
    this.left.add(deviceId);
    if (!this.expected.has(deviceId)) return;
    const answered = this.answered(deviceId);
    if (!answered) {
      this.expected.delete(deviceId);
      this.view.drop(this.phase, deviceId);
    }
    this.expectedAnswered();
  }

  private answered(id: string): boolean {
    switch (this.phase) {
      case 'advertise':
        return this.keys.has(id);
      case 'share':
        return this.sealed.has(id);
      case 'masked':
        return this.inputs.has(id);
      case 'unmask':
        return this.revealed.has(id);
      default:
        return true;
    }
  }

  private expectedAnswered(): void {
    for (const id of this.expected) if (!this.answered(id)) return;
    void this.advance();
  }

  private advancing = false;

  /** Close the current phase: those who answered go on, the rest are recorded as dropped in it. */
  private async advance(): Promise<void> {
    if (this.advancing || this.phase === 'done' || this.phase === 'failed') return;
    this.advancing = true;
    this.disarm();
    try {
      for (const id of [...this.expected]) {
        if (!this.answered(id)) {
          this.expected.delete(id);
          this.view.drop(this.phase, id);
        }
      }
      if (this.expected.size < this.cfg.threshold) return this.failWith(`${this.expected.size} devices completed ${this.phase}, threshold ${this.cfg.threshold}`);
      if (this.phase === 'advertise') this.startSharing();
      else if (this.phase === 'share') this.startMasking();
      else if (this.phase === 'masked') this.startUnmasking();
      else if (this.phase === 'unmask') await this.finish();
    } finally {
      this.advancing = false;
    }
  }

  private failWith(reason: string): void {
    this.disarm();
    this.view.close(this.phase, 'failed', reason);
    this.phase = 'failed';
    this.host.fail(`secure aggregation: ${reason}`);
  }

  private enter(phase: SecAggPhase): void {
    this.phase = phase;
    this.view.enter(phase, this.expected.size);
    for (const id of this.left) {
      if (this.expected.delete(id)) this.view.drop(phase, id);
    }
    this.arm();
  }

  /** U1 closed: number the devices, draw the graph, send each its neighbours' public keys. */
  private startSharing(): void {
    this.ids = [...this.expected].sort();
    this.ids.forEach((id, i) => this.index.set(id, i + 1));
    const n = this.ids.length;
    const degree = degreeOf(this.cfg, n);
    if (this.cfg.threshold > degree + 1) return this.failWith(`threshold ${this.cfg.threshold} exceeds the ${degree + 1} shares of each of ${n} devices`);
    this.graph = neighbourGraph(n, this.cfg.protocol === 'secagg' ? 'complete' : degree, () => this.host.random()).map((l) => l.map((j) => j + 1));
    this.view.degree = Math.min(degree, n - 1);
    this.enter('share');
    for (const id of this.ids) {
      const u = this.index.get(id)!;
      const nb = this.graph[u - 1];
      const keys = new Uint8Array(nb.length * PUBLIC_KEYS_BYTES);
      nb.forEach((v, j) => keys.set(this.keys.get(this.ids[v - 1])!, j * PUBLIC_KEYS_BYTES));
      this.sendTo(id, { taskId: this.host.taskId, round: this.host.round, phase: 'neighbours', index: u, threshold: this.cfg.threshold, neighbours: nb, keys });
    }
  }

  private sendTo(id: string, msg: SecAggDown): void {
    if (!this.host.send(id, msg)) {
      this.left.add(id);
      if (this.expected.delete(id)) this.view.drop(this.phase, id);
      return;
    }
    this.view.bytesDown += 'keys' in msg ? msg.keys.length : 'data' in msg ? msg.data.length : 8 * (msg.survivors.length + msg.dropped.length);
  }

  /** U2 closed: relay to each device the share pairs its neighbours in U2 sealed for it. */
  private startMasking(): void {
    this.enter('masked');
    for (const id of this.expected) {
      const u = this.index.get(id)!;
      const from = this.graph[u - 1].filter((v) => this.expected.has(this.ids[v - 1]));
      const data = new Uint8Array(from.length * SEALED_PAIR_BYTES);
      from.forEach((v, j) => {
        const pos = this.graph[v - 1].indexOf(u);
        data.set(this.sealed.get(this.ids[v - 1])!.subarray(pos * SEALED_PAIR_BYTES, (pos + 1) * SEALED_PAIR_BYTES), j * SEALED_PAIR_BYTES);
      });
      this.receivedFrom.set(u, from);
      this.sendTo(id, { taskId: this.host.taskId, round: this.host.round, phase: 'shares', from, data });
    }
    this.sealed.clear();
  }

  /** U3 closed: ask every survivor for seed shares of survivors and key shares of devices that shared but sent no input. */
  private startUnmasking(): void {
    const shared = [...this.receivedFrom.keys()];
    this.survivors = shared.filter((u) => this.expected.has(this.ids[u - 1])).sort((a, b) => a - b);
    this.droppedIdx = shared.filter((u) => !this.expected.has(this.ids[u - 1])).sort((a, b) => a - b);
    this.enter('unmask');
    for (const u of this.survivors) this.sendTo(this.ids[u - 1], { taskId: this.host.taskId, round: this.host.round, phase: 'unmask', survivors: this.survivors, dropped: this.droppedIdx });
  }

  /** What device u reveals, in order: seed shares of survivors it holds (itself included), then key shares of dropped devices it holds. */
  private revealPlan(u: number): { seeds: number[]; keys: number[] } {
    const from = this.receivedFrom.get(u) ?? [];
    const surv = new Set(this.survivors);
    const drop = new Set(this.droppedIdx);
    return { seeds: [u, ...from].filter((v) => surv.has(v)).sort((a, b) => a - b), keys: from.filter((v) => drop.has(v)) };
  }

  private takeReveal(deviceId: string, data: Uint8Array): void {
    if (this.revealed.has(deviceId)) this.refuse('shares already revealed');
    const u = this.index.get(deviceId)!;
    const plan = this.revealPlan(u);
    if (data.length !== SHARE_BYTES * (plan.seeds.length + plan.keys.length)) this.bad(`expected ${plan.seeds.length + plan.keys.length} shares`);
    let o = 0;
    const take = (into: Map<number, Share[]>, owner: number) => {
      const list = into.get(owner) ?? [];
      list.push({ x: u, y: data.slice(o, o + SHARE_BYTES) });
      into.set(owner, list);
      o += SHARE_BYTES;
    };
    plan.seeds.forEach((v) => take(this.seedShares, v));
    plan.keys.forEach((v) => take(this.keyShares, v));
    this.revealed.add(deviceId);
  }

  /** U4 closed: rebuild the masks that do not cancel and hand the mean to the runner. */
  private async finish(): Promise<void> {
    const t0 = performance.now();
    try {
      const maskKeys = new Map(this.ids.map((id, i) => [i + 1, this.keys.get(id)!.subarray(32, 64)] as const));
      const sum = await unmask({
        taskId: this.host.taskId,
        round: this.host.round,
        threshold: this.cfg.threshold,
        sum: this.sum,
        survivors: this.survivors,
        dropped: this.droppedIdx,
        maskKeys,
        receivedFrom: this.receivedFrom,
        seedShares: this.seedShares,
        keyShares: this.keyShares,
      });
      const result = decodeSum(sum, this.modelLength, this.client);
      this.view.unmaskMs = performance.now() - t0;
      this.view.close('unmask', 'unmasked');
      this.phase = 'done';
      this.host.done(result, this.survivors.map((u) => this.ids[u - 1]));
    } catch (err) {
      if (err instanceof UnmaskError || err instanceof RangeError) return this.failWith(err.message);
      throw err;
    }
  }

  /** Indices this round gave (for tests and the round view): device id -> Shamir point. */
  get indices(): ReadonlyMap<string, number> {
    return this.index;
  }
}
