/**
 * Streaming weighted mean of update vectors: each update is folded into a float64 running sum as
 * it arrives and can be dropped at once, so memory is O(model) whatever the number of clients.
 * Contract: `mean()` equals sum_i(w_i * x_i) / sum_i(w_i) for the updates added so far.
 */
export class WeightedMean {
  private readonly sum: Float64Array;
  private total = 0;
  private n = 0;

  constructor(readonly length: number) {
    this.sum = new Float64Array(length);
  }

  add(x: Float32Array, weight: number): void {
    if (x.length !== this.length) throw new RangeError(`update length ${x.length} != ${this.length}`);
    if (!(weight > 0) || !Number.isFinite(weight)) throw new RangeError('weight must be positive and finite');
    const s = this.sum;
    for (let i = 0; i < s.length; i++) s[i] += weight * x[i];
    this.total += weight;
    this.n++;
  }

  /** The running sum itself (read-only use: hierarchical aggregation exports it). */
  get rawSum(): Float64Array {
    return this.sum;
  }

  /** Fold another node's running sum in (same length), as if its updates had been added here. */
  merge(sum: Float64Array, totalWeight: number, count: number): void {
    if (sum.length !== this.length) throw new RangeError(`partial length ${sum.length} != ${this.length}`);
    const s = this.sum;
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
    const inv = 1 / this.total;
    for (let i = 0; i < out.length; i++) out[i] = this.sum[i] * inv;
    return out;
  }
}
