import {
  PUBLIC_KEYS_BYTES,
  SEALED_PAIR_BYTES,
  SHARE_BYTES,
  addMod,
  applyPairMask,
  clipInPlace,
  concat,
  encodeInput,
  encryptionKey,
  expandMask,
  generateKeyPair,
  open,
  pairPlaintext,
  pairSeed,
  pairSign,
  randomBytes,
  seal,
  shareAad,
  split,
  wordsToBytes,
  type RawKeyPair,
  type SecAggClientConfig,
  type SecAggDown,
} from '@flotilla/protocol';

/** Sends one `secagg` message and resolves on an ok ack (rejects otherwise). */
export type SecAggSend = (phase: 'keys' | 'shares' | 'unmask', data: Uint8Array) => Promise<void>;

interface Held {
  /** This device's share of the sender's mask key and of its self-mask seed. */
  key: Uint8Array;
  seed: Uint8Array;
}

/**
 * One device's side of one SecAgg/SecAgg+ round (docs/secure-aggregation.md), the same code in
 * Node and browsers (WebCrypto through @flotilla/protocol):
 *   advertise: two fresh X25519 key pairs (encryption, masking), public halves sent;
 *   neighbours: a fresh self-mask seed; the masking private key and the seed are Shamir-shared
 *     t-of-(k+1) over the neighbours and itself, each neighbour's pair sealed with AES-GCM under
 *     the key agreed with it, sent in neighbour order;
 *   shares: the sealed pairs addressed to it are opened and kept (a tampered one fails the round here);
 *   masked input: quantized weighted delta + PRG(seed) + sum over neighbours v that shared of
 *     sign(u, v) PRG(agreed seed), mod 2^32;
 *   unmask: reveals seed shares of survivors (itself included) and key shares of devices that
 *     dropped, in ascending index order, seeds first; never both for one device, and only once.
 */
export class SecAggDevice {
  private enc: RawKeyPair | null = null;
  private mask: RawKeyPair | null = null;
  private seed: Uint8Array | null = null;
  private index = 0;
  private threshold = 0;
  private neighbourKeys = new Map<number, { enc: Uint8Array; mask: Uint8Array }>();
  private ownShares: Held | null = null;
  private held = new Map<number, Held>();
  private answeredUnmask = false;
  private sharesIn!: (ok: boolean) => void;
  /** Resolves when the relayed shares are in: the masked input can be formed. */
  private readonly sharesReady = new Promise<boolean>((r) => (this.sharesIn = r));
  /** Bytes this device sent and received for the protocol (masked input excluded). */
  bytesUp = 0;
  bytesDown = 0;

  constructor(
    readonly taskId: string,
    readonly round: number,
    readonly cfg: SecAggClientConfig,
    private readonly send: SecAggSend,
  ) {}

  async advertise(): Promise<void> {
    [this.enc, this.mask] = await Promise.all([generateKeyPair(), generateKeyPair()]);
    const keys = concat(this.enc.publicKey, this.mask.publicKey);
    this.bytesUp += keys.length;
    await this.send('keys', keys);
  }

  /** A coordinator message for this round (already validated). */
  async onMessage(m: SecAggDown): Promise<void> {
    this.bytesDown += m.phase === 'neighbours' ? m.keys.length : m.phase === 'shares' ? m.data.length : 8 * (m.survivors.length + m.dropped.length);
    if (m.phase === 'neighbours') await this.share(m.index, m.threshold, m.neighbours, m.keys);
    else if (m.phase === 'shares') await this.receive(m.from, m.data);
    else await this.unmask(m.survivors, m.dropped);
  }

  private async share(index: number, t: number, neighbours: number[], keys: Uint8Array): Promise<void> {
    if (!this.enc || !this.mask) throw new Error('secure aggregation: neighbours before keys');
    if (keys.length !== neighbours.length * PUBLIC_KEYS_BYTES) throw new Error('secure aggregation: neighbour keys do not match the list');
    this.index = index;
    this.threshold = t;
    neighbours.forEach((v, j) => {
      const k = keys.subarray(j * PUBLIC_KEYS_BYTES, (j + 1) * PUBLIC_KEYS_BYTES);
      this.neighbourKeys.set(v, { enc: k.slice(0, 32), mask: k.slice(32) });
    });
    this.seed = randomBytes(32);
    const points = [index, ...neighbours];
    const keyShares = split(this.mask.privateKey, t, points);
    const seedShares = split(this.seed, t, points);
    this.ownShares = { key: keyShares[0].y, seed: seedShares[0].y };
    const sealed = await Promise.all(
      neighbours.map(async (v, j) => {
        const key = await encryptionKey(this.enc!.privateKey, this.neighbourKeys.get(v)!.enc);
        return seal(key, pairPlaintext(keyShares[j + 1].y, seedShares[j + 1].y), shareAad(this.taskId, this.round, index, v));
      }),
    );
    const data = concat(...sealed);
    this.bytesUp += data.length;
    await this.send('shares', data);
  }

  private async receive(from: number[], data: Uint8Array): Promise<void> {
    try {
      if (data.length !== from.length * SEALED_PAIR_BYTES) throw new Error('secure aggregation: relayed shares do not match the list');
      await Promise.all(
        from.map(async (v, j) => {
          const nk = this.neighbourKeys.get(v);
          if (!nk) throw new Error(`secure aggregation: shares relayed from #${v}, not a neighbour`);
          const key = await encryptionKey(this.enc!.privateKey, nk.enc);
          const pt = await open(key, data.subarray(j * SEALED_PAIR_BYTES, (j + 1) * SEALED_PAIR_BYTES), shareAad(this.taskId, this.round, v, this.index));
          this.held.set(v, { key: pt.slice(0, SHARE_BYTES), seed: pt.slice(SHARE_BYTES) });
        }),
      );
      this.sharesIn(true);
    } catch (err) {
      this.sharesIn(false);
      throw err;
    }
  }

  /** The round is over for this device (cancelled, superseded): a pending masked input gives up. */
  abort(): void {
    this.sharesIn(false);
  }

  /** Resolves true once the device can mask (false: this round's shares were bad). */
  ready(): Promise<boolean> {
    return this.sharesReady;
  }

  /**
   * The masked input of `delta` (wire bytes). Under distributed DP the delta is first clipped to
   * the L2 norm and noised here, on the device. Waits for the relayed shares.
   */
  async maskedInput(delta: Float32Array, numExamples: number, metrics: Record<string, number>): Promise<Uint8Array> {
    if (!(await this.sharesReady)) throw new Error('secure aggregation: no usable shares for this round');
    if (this.cfg.dp) {
      const d = delta.slice();
      clipInPlace(d, this.cfg.dp.clipNorm);
      addGaussian(d, this.cfg.dp.noiseStd);
      delta = d;
    }
    const y = encodeInput(delta, numExamples, metrics, this.cfg);
    addMod(y, await expandMask(this.seed!, y.length));
    for (const v of this.held.keys()) {
      const seed = await pairSeed(this.mask!.privateKey, this.neighbourKeys.get(v)!.mask, this.taskId, this.round);
      await applyPairMask(y, seed, pairSign(this.index, v));
    }
    return wordsToBytes(y);
  }

  private async unmask(survivors: number[], dropped: number[]): Promise<void> {
    if (this.answeredUnmask) throw new Error('secure aggregation: unmasking asked twice');
    const surv = new Set(survivors);
    const drop = new Set(dropped);
    // The checks that keep both secrets of one device from being revealed (Bonawitz et al., round 4).
    if (dropped.some((v) => surv.has(v))) throw new Error('secure aggregation: a device is listed as survivor and dropped');
    if (!surv.has(this.index)) throw new Error('secure aggregation: unmasking asked of a device not listed as survivor');
    if (survivors.length < this.threshold) throw new Error(`secure aggregation: ${survivors.length} survivors, threshold ${this.threshold}`);
    this.answeredUnmask = true;
    const all = new Map(this.held);
    all.set(this.index, this.ownShares!);
    const seeds = [...all.keys()].filter((v) => surv.has(v)).sort((a, b) => a - b);
    const keys = [...this.held.keys()].filter((v) => drop.has(v)).sort((a, b) => a - b);
    const data = concat(...seeds.map((v) => all.get(v)!.seed), ...keys.map((v) => all.get(v)!.key));
    this.bytesUp += data.length;
    await this.send('unmask', data);
  }
}

/** Adds N(0, std^2) to each coordinate from the platform CSPRNG (Box-Muller). */
function addGaussian(x: Float32Array, std: number): void {
  if (std === 0) return;
  const u = new Uint32Array(8192); // getRandomValues fills at most 64 KiB per call
  for (let i = 0; i < x.length; ) {
    globalThis.crypto.getRandomValues(u);
    for (let j = 0; j < u.length && i < x.length; j += 2, i += 2) {
      const r = Math.sqrt(-2 * Math.log((u[j] + 1) / 4294967297)) * std;
      const b = (2 * Math.PI * u[j + 1]) / 4294967296;
      x[i] += r * Math.cos(b);
      if (i + 1 < x.length) x[i + 1] += r * Math.sin(b);
    }
  }
}
