/**
 * The report fold as WebAssembly SIMD passes over cache-sized blocks (issue 14 part 9; measured by
 * bench/aggregation.ts; the module's source is fold-kernel-wasm.ts).
 *
 * `FoldKernel` owns one WebAssembly memory holding the float64 running sum, a small float32
 * scratch (BLOCK floats, 16 KiB: it stays in the L1/L2 cache) and, with `depth` > 1, `depth`
 * float32 staging slots the size of a report. WebAssembly cannot read the caller's array in place,
 * so a report is always copied in.
 *
 * `fold(x, w, bound)` folds one report at once: a SIMD check of every block's magnitude bits
 * against `bound` (copied block by block into the scratch), stopping at the first failing block
 * with nothing written; then, only when all passed, `sum += w * x` in place, block by block. The
 * delta is read twice (the second time partly from cache) and the sum read and written once.
 *
 * `stage(x, w, bound)` copies the report into a free slot in 64 KiB blocks, checking each block
 * while it is in the L2 cache; a report failing the check takes no slot. When every slot is full
 * (and on `flush`) one pass folds them all: `s = sum[i]; s += w_1 x_1[i]; ...; sum[i] = s`, so
 * the sum's 16 bytes of traffic per parameter are paid once per `depth` reports instead of once
 * per report. Memory: 8 bytes per parameter for the sum plus 4 per parameter per slot.
 *
 * Either way a refused delta leaves the sum (and what is staged) bit-for-bit unchanged, and the
 * arithmetic is the scalar loop `s[i] += w * x[i]` in float64 (promote, multiply, add, no fused
 * multiply-add), report after report in the order given, so results are identical to it.
 *
 * Contract of `bound`: the bit pattern of a non-negative float32 b; a delta passes when every
 * |x[i]| <= b and no x[i] is NaN (NaN's bits, masked, exceed every finite pattern). `NO_BOUND`
 * (0x7fffffff) lets everything through (callers that checked already).
 *
 * Where WebAssembly SIMD is unavailable the same contract is met by a scalar JavaScript loop
 * (folding at once: nothing is staged).
 */

import { FOLD_MAX, foldModuleBytes } from './fold-kernel-wasm.js';

/** Floats per block of the copy-in (a multiple of LANES): 16 KiB of scratch. */
export const BLOCK = 4096;
/** The kernel works on whole groups of this many floats (the check's step); arrays are zero-padded to them. */
const LANES = 16;
/**
 * Floats per block of `stage`'s copy-and-check (64 KiB: in the L2 cache of any current core).
 * Measured 2-13 % faster than BLOCK on a busy machine (fewer calls per report; docs/cluster.md).
 */
const STAGE_BLOCK = 16384;

let compiled: WebAssembly.Module | null | undefined;
function foldModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = foldModuleBytes();
    compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** Lets every value through (the magnitude bits of any float32, NaN included, are <= this). */
export const NO_BOUND = 0x7fffffff;

/** Bit pattern of the largest float32 <= b (b >= 0), for `fold`'s bound. */
export function boundBits(b: number): number {
  if (!(b > 0)) return 0;
  const f = new Float32Array([Math.min(b, 3.4028234663852886e38)]);
  const bits = new Uint32Array(f.buffer);
  if (f[0] > b) bits[0] -= 1; // rounded up: step back one float32
  return bits[0];
}

type FoldFn = (dst: number, n: number, ...xsThenWs: number[]) => void;
type Exports = { check(x: number, n: number, bound: number): number } & Record<`fold${number}`, FoldFn>;

/** Bytes a WebAssembly (wasm32) memory can hold. */
const WASM_MAX_BYTES = 2 ** 32;

/**
 * The staging depth `WeightedMean` uses by default: 4 reports folded per pass over the sum (see
 * docs/cluster.md, "Staged folds": 8 per pass measured 0-26 % faster for twice the staging
 * memory), fewer when the sum and 4 staging slots would not fit in one WebAssembly memory.
 */
export function defaultDepth(length: number): number {
  const padded = Math.ceil(length / LANES) * LANES;
  return Math.max(1, Math.min(4, Math.floor((WASM_MAX_BYTES - 8 * padded - 4 * BLOCK - 65536) / (4 * padded))));
}

export class FoldKernel {
  private readonly fn: Exports | null;
  private readonly folds: FoldFn[] = [];
  /** The running sum: `length` float64 values (in the kernel's memory when it has one). Staged reports are not in it until `flush`. */
  readonly sum: Float64Array;
  private readonly padded: number;
  private readonly scratch: Float32Array;
  private readonly scratchOffset: number;
  private readonly slots: Float32Array[] = [];
  private readonly slotOffsets: number[] = [];
  private readonly weights: number[] = [];
  private staged = 0;

  /**
   * `depth`: how many accepted reports `stage` keeps before folding them together in one pass over
   * the sum (1, the default: `stage` folds at once, as `fold`). Each staging slot is a float32
   * copy of a report in the kernel's memory: 4 bytes per parameter per slot, on top of the sum's 8.
   */
  constructor(
    readonly length: number,
    readonly depth = 1,
  ) {
    if (!(Number.isInteger(depth) && depth >= 1 && depth <= FOLD_MAX)) throw new RangeError(`depth must be an integer in 1..${FOLD_MAX}`);
    const mod = foldModule();
    this.padded = Math.ceil(length / LANES) * LANES;
    if (mod) {
      const slotBytes = depth > 1 ? 4 * this.padded : 0;
      const mem = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil((8 * this.padded + depth * slotBytes + 4 * BLOCK) / 65536)) });
      this.fn = new WebAssembly.Instance(mod, { env: { mem } }).exports as unknown as Exports;
      for (let k = 1; k <= FOLD_MAX; k++) this.folds[k] = this.fn[`fold${k}`];
      this.sum = new Float64Array(mem.buffer, 0, length);
      let at = 8 * this.padded;
      if (slotBytes) for (let j = 0; j < depth; j++, at += slotBytes) this.slotOffsets.push(at), this.slots.push(new Float32Array(mem.buffer, at, length));
      this.scratchOffset = at;
      this.scratch = new Float32Array(mem.buffer, at, BLOCK);
      // Touch every page now (a new memory is mapped lazily): the first reports of a round then
      // fold at full speed instead of paying the page faults of the sum and the slots. The slots'
      // padding past `length` stays zero for good (0 passes every bound and adds 0).
      new Uint8Array(mem.buffer).fill(0);
    } else {
      this.fn = null;
      this.sum = new Float64Array(length);
      this.scratch = new Float32Array(0);
      this.scratchOffset = 0;
    }
  }

  /** Reports accepted by `stage` and not yet in `sum`. */
  get pending(): number {
    return this.staged;
  }

  /** sum += w * x, unless some |x[i]| exceeds the float32 whose bits are `bound` (or is NaN): then false and nothing changed. Staged reports are folded first. */
  fold(x: Float32Array, w: number, bound: number): boolean {
    if (x.length !== this.length) throw new RangeError(`update length ${x.length} != ${this.length}`);
    const fn = this.fn;
    if (!fn) return scalarFold(this.sum, x, w, bound);
    // Pass 1 (skipped without a bound): every block checked before anything is written.
    if (bound !== NO_BOUND) for (let at = 0; at < this.length; at += BLOCK) if (fn.check(this.scratchOffset, this.copyIn(x, at), bound) !== 0) return false;
    this.flush();
    // Pass 2: the sum updated in place, block by block, last block first: the blocks pass 1 read
    // last are the ones most likely still in cache.
    const fold1 = this.folds[1];
    for (let at = Math.floor((this.length - 1) / BLOCK) * BLOCK; at >= 0; at -= BLOCK) fold1(8 * at, this.copyIn(x, at), this.scratchOffset, w);
    return true;
  }

  /**
   * Accept `x` with weight `w` under the same check as `fold` (false and nothing changed when it
   * fails), to be folded later: when `depth` reports are staged they are folded together, each
   * element of the sum read and written once for all of them, with the float64 operations of
   * folding them one by one in staging order (so bit for bit that result). `flush` folds what is
   * staged. The caller may reuse `x` at once: it is copied.
   */
  stage(x: Float32Array, w: number, bound: number): boolean {
    if (this.depth === 1 || !this.fn) return this.fold(x, w, bound);
    if (x.length !== this.length) throw new RangeError(`update length ${x.length} != ${this.length}`);
    const j = this.staged;
    const slot = this.slots[j];
    if (bound === NO_BOUND) slot.set(x);
    else
      for (let at = 0; at < this.length; at += STAGE_BLOCK) {
        // One block copied into the slot and checked while it is in the L2 cache. A refusal
        // leaves this slot free: its partial copy is overwritten by the next report staged.
        const n = Math.min(STAGE_BLOCK, this.length - at);
        slot.set(x.subarray(at, at + n), at);
        if (this.fn.check(this.slotOffsets[j] + 4 * at, Math.ceil(n / LANES) * LANES, bound) !== 0) return false;
      }
    this.weights[j] = w;
    if (++this.staged === this.depth) this.flush();
    return true;
  }

  /** Fold every staged report into `sum`, in staging order, in one pass over it. */
  flush(): void {
    const k = this.staged;
    if (k === 0) return;
    this.staged = 0;
    this.folds[k](0, this.padded, ...this.slotOffsets.slice(0, k), ...this.weights.slice(0, k));
  }

  /** Copies x[at, at + BLOCK) into the scratch, zero-padded to whole lanes (0 passes every bound and adds 0); returns the float count. */
  private copyIn(x: Float32Array, at: number): number {
    const n = Math.min(BLOCK, this.length - at);
    this.scratch.set(x.subarray(at, at + n));
    const whole = Math.ceil(n / LANES) * LANES;
    if (whole > n) this.scratch.fill(0, n, whole);
    return whole;
  }
}

/** Whether every value of `x` passes `bound` (see FoldKernel.fold), by a scalar read of its bits. */
export function withinBound(x: Float32Array, bound: number): boolean {
  if (bound === NO_BOUND) return true;
  const bits = new Int32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7fffffff) > bound) return false;
  return true;
}

/** The same contract in JavaScript: check first (nothing written on failure), then sum += w * x. */
function scalarFold(sum: Float64Array, x: Float32Array, w: number, bound: number): boolean {
  if (!withinBound(x, bound)) return false;
  for (let i = 0; i < x.length; i++) sum[i] += w * x[i];
  return true;
}
