import { FoldKernel, NO_BOUND, defaultDepth } from './fold-kernel.js';

/**
 * Streaming weighted mean of update vectors: each update is copied into the fold kernel as it
 * arrives and can be dropped at once; the kernel folds `depth` staged updates at a time into a
 * float64 running sum (fold-kernel.ts), and `mean`, `rawSum`, `merge` and `flush` fold what is
 * still staged first. Memory is O(model) whatever the number of clients: 8 bytes per parameter
 * for the sum plus 4 per parameter per staging slot (depth 4 by default: 24 bytes per parameter;
 * depth 1 stages nothing: 8), and a 16 KiB scratch.
 * Contract: `mean()` equals sum_i(w_i * x_i) / sum_i(w_i) for the updates added so far, and the
 * sum is bit for bit the float64 loop `s[i] += w * x[i]` over them in the order added, whatever
 * the depth.
 */
export class WeightedMean {
  private readonly kernel: FoldKernel;
  private total = 0;
  private n = 0;

  constructor(
    readonly length: number,
    depth = defaultDepth(length),
  ) {
    this.kernel = new FoldKernel(length, depth);
  }

  /** Updates per pass over the sum (1: each folded as it is added). */
  get depth(): number {
    return this.kernel.depth;
  }

  add(x: Float32Array, weight: number): void {
    checkWeight(weight);
    this.kernel.stage(x, weight, NO_BOUND);
    this.total += weight;
    this.n++;
  }

  /**
   * Add `x` only if every value is finite with |x[i]| <= the float32 whose bits are `bound`
   * (fold-kernel.ts, `boundBits`); otherwise return false and change nothing (a refused update
   * takes no staging slot and folds nothing). The check runs block by block in the kernel as the
   * update is copied in.
   */
  addWithin(x: Float32Array, weight: number, bound: number): boolean {
    checkWeight(weight);
    if (!this.kernel.stage(x, weight, bound)) return false;
    this.total += weight;
    this.n++;
    return true;
  }

  /** Fold the staged updates into the sum now (the getters and methods below do it themselves). */
  flush(): void {
    this.kernel.flush();
  }

  /**
   * The running sum itself, with every update added so far folded in (staged ones are folded
   * first). It is the live array: later adds change it once they are folded, so read it again
   * through this getter. Hierarchical aggregation exports it.
   */
  get rawSum(): Float64Array {
    this.kernel.flush();
    return this.kernel.sum;
  }

  /** Fold another node's running sum in (same length), as if its updates had been added here. */
  merge(sum: Float64Array, totalWeight: number, count: number): void {
    if (sum.length !== this.length) throw new RangeError(`partial length ${sum.length} != ${this.length}`);
    const s = this.rawSum;
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
    const s = this.rawSum;
    const inv = 1 / this.total;
    for (let i = 0; i < out.length; i++) out[i] = s[i] * inv;
    return out;
  }
}

function checkWeight(weight: number): void {
  if (!(weight > 0) || !Number.isFinite(weight)) throw new RangeError('weight must be positive and finite');
}
