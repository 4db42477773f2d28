/**
 * Input statistics and the drift summary: per-feature means and variances of logged inputs
 * compared with a reference (recorded at publish, or the first sampled requests a version served).
 */
export interface FeatureStats {
  count: number;
  mean: number[];
  variance: number[];
}

/** Streaming per-feature mean and (population) variance, Welford's algorithm. */
export class StatsAccumulator {
  count = 0;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;

  constructor(readonly width: number) {
    this.mean = new Float64Array(width);
    this.m2 = new Float64Array(width);
  }

  /** Add the rows of a row-major block. */
  add(data: ArrayLike<number>): void {
    const rows = Math.floor(data.length / this.width);
    for (let r = 0; r < rows; r++) {
      this.count++;
      const off = r * this.width;
      for (let f = 0; f < this.width; f++) {
        const x = data[off + f];
        const d = x - this.mean[f];
        this.mean[f] += d / this.count;
        this.m2[f] += d * (x - this.mean[f]);
      }
    }
  }

  stats(): FeatureStats {
    const n = this.count;
    return { count: n, mean: Array.from(this.mean), variance: Array.from(this.m2, (m) => (n > 0 ? m / n : 0)) };
  }
}

export interface FeatureDrift {
  feature: number;
  referenceMean: number;
  currentMean: number;
  referenceVariance: number;
  currentVariance: number;
  /** (current mean - reference mean) / pooled standard deviation. */
  shift: number;
}

export interface DriftSummary {
  features: number;
  referenceCount: number;
  currentCount: number;
  /** |shift| above which a feature counts as drifted. */
  threshold: number;
  driftedFeatures: number;
  driftedFraction: number;
  meanAbsShift: number;
  maxAbsShift: number;
  /** Mean over features of |log(current variance / reference variance)| (0: same spread). */
  meanAbsLogVarianceRatio: number;
  /** 'drift' when more than 5% of features drifted. */
  status: 'ok' | 'drift' | 'insufficient-data';
  top: FeatureDrift[];
}

const EPS = 1e-6;

/** Compare current statistics with the reference, feature by feature. */
export function driftSummary(ref: FeatureStats, cur: FeatureStats, threshold = 0.5, topK = 10): DriftSummary {
  const n = Math.min(ref.mean.length, cur.mean.length);
  const all: FeatureDrift[] = [];
  let drifted = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  let sumLogVar = 0;
  for (let f = 0; f < n; f++) {
    const sd = Math.sqrt((ref.variance[f] + cur.variance[f]) / 2 + EPS);
    const shift = (cur.mean[f] - ref.mean[f]) / sd;
    const abs = Math.abs(shift);
    if (abs > threshold) drifted++;
    sumAbs += abs;
    maxAbs = Math.max(maxAbs, abs);
    sumLogVar += Math.abs(Math.log((cur.variance[f] + EPS) / (ref.variance[f] + EPS)));
    all.push({ feature: f, referenceMean: ref.mean[f], currentMean: cur.mean[f], referenceVariance: ref.variance[f], currentVariance: cur.variance[f], shift });
  }
  all.sort((a, b) => Math.abs(b.shift) - Math.abs(a.shift));
  const fraction = n > 0 ? drifted / n : 0;
  return {
    features: n,
    referenceCount: ref.count,
    currentCount: cur.count,
    threshold,
    driftedFeatures: drifted,
    driftedFraction: fraction,
    meanAbsShift: n > 0 ? sumAbs / n : 0,
    maxAbsShift: maxAbs,
    meanAbsLogVarianceRatio: n > 0 ? sumLogVar / n : 0,
    status: ref.count === 0 || cur.count === 0 ? 'insufficient-data' : fraction > 0.05 ? 'drift' : 'ok',
    top: all.slice(0, topK),
  };
}
