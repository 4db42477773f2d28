import { FoldKernel, NO_BOUND } from './fold-kernel.js';

/**
 * Streaming weighted mean of update vectors: each update is folded into a float64 running sum as
 * it arrives and can be dropped at once, so memory is O(model) whatever the number of clients
 * (one float64 sum, 8 bytes per parameter, and a 16 KiB scratch: see fold-kernel.ts).
 * Contract: `mean()` equals sum_i(w_i * x_i) / sum_i(w_i) for the updates added so far.
 */
export class WeightedMean {
  private readonly kernel: FoldKernel;
  private total = 0;
  private n = 0;

  constructor(readonly length: number) {
    this.kernel = new FoldKernel(length);
  }

  add(x: Float32Array, weight: number): void {
    checkWeight(weight);
    this.kernel.fold(x, weight, NO_BOUND);
    this.total += weight;
    this.n++;
  }

  /**
   * Fold `x` only if every value is finite with |x[i]| <= the float32 whose bits are `bound`
   * (fold-kernel.ts, `boundBits`); otherwise return false and change nothing. The check and the
   * fold run block by block in the kernel, with no full-size copy of the delta.
   */
  addWithin(x: Float32Array, weight: number, bound: number): boolean {
    checkWeight(weight);
    if (!this.kernel.fold(x, weight, bound)) return false;
    this.total += weight;
    this.n++;
    return true;
  }

  /** The running sum itself (live: later adds change it). Hierarchical aggregation exports it. */
  get rawSum(): Float64Array {
    return this.kernel.sum;
  }

  /** Fold another node's running sum in (same length), as if its updates had been added here. */
  merge(sum: Float64Array, totalWeight: number, count: number): void {
    if (sum.length !== this.length) throw new RangeError(`partial length ${sum.length} != ${this.length}`);
    const s = this.kernel.sum;
    for (let i = 0; i < s.length; i++) s[i] += sum[i];
    this.total += totalWeight;
    this.n += count;
  }

  get count(): number {
    return this.n;
  }

  get totalWeight(): number {
    return this.total;
  }

  /** The weighted mean as float32; throws when nothing was added. */
  mean(): Float32Array {
    if (this.n === 0) throw new RangeError('no updates');
    const out = new Float32Array(this.length);
    const s = this.kernel.sum;
    const inv = 1 / this.total;
    for (let i = 0; i < out.length; i++) out[i] = s[i] * inv;
    return out;
  }
}

function checkWeight(weight: number): void {
  if (!(weight > 0) || !Number.isFinite(weight)) throw new RangeError('weight must be positive and finite');
}
