import type { WeightsVariant } from '../registry/variants.js';
import type { DeploymentRecord, DeploymentTarget } from '../store/records.js';
import { Bandit, type ArmState, type Rng } from './bandit.js';
import { Histogram, LatencySet, RateWindow } from './histogram.js';
import { hashFraction } from './payload-log.js';

export interface Target {
  /** Stable name of the target within its deployment: `ref` or `ref#variant`. */
  key: string;
  ref: string;
  variant: WeightsVariant;
  weight: number;
}

export const targetKey = (t: DeploymentTarget): string => (t.variant && t.variant !== 'float32' ? `${t.ref}#${t.variant}` : t.ref);

const toTarget = (t: DeploymentTarget): Target => ({ key: targetKey(t), ref: t.ref, variant: (t.variant ?? 'float32') as WeightsVariant, weight: t.weight ?? 1 });

/** The candidate targets of a routing config; for shadow, [primary, shadow]. */
export function targetsOf(r: DeploymentRecord['routing']): Target[] {
  return r.mode === 'shadow' ? [toTarget(r.primary), toTarget(r.shadow)] : r.targets.map(toTarget);
}

export class TargetStats {
  requests = 0;
  errors = 0;
  readonly latency = new LatencySet();
  /** Version number -> requests served (an alias target may move between versions). */
  readonly versions = new Map<number, number>();

  served(version: number, queueMs: number, computeMs: number, totalMs: number): void {
    this.requests++;
    this.versions.set(version, (this.versions.get(version) ?? 0) + 1);
    this.latency.record(queueMs, computeMs, totalMs);
  }
}

/** Comparison of a shadow target's answers with the primary's on mirrored requests. */
export class ShadowStats {
  mirrored = 0;
  completed = 0;
  failed = 0;
  rowsCompared = 0;
  rowsAgreed = 0;
  valuesCompared = 0;
  absDiffSum = 0;
  latencyDiffSum = 0;
  readonly shadowTotal = new Histogram();
  readonly primaryTotal = new Histogram();

  /** Argmax agreement per row, mean absolute difference, latency difference (shadow - primary). */
  compare(primary: Float32Array, shadow: Float32Array, width: number, primaryMs: number, shadowMs: number): void {
    this.completed++;
    const rows = Math.floor(Math.min(primary.length, shadow.length) / width);
    for (let r = 0; r < rows; r++) {
      let ap = 0;
      let as = 0;
      for (let j = 0; j < width; j++) {
        const i = r * width + j;
        if (primary[i] > primary[r * width + ap]) ap = j;
        if (shadow[i] > shadow[r * width + as]) as = j;
        this.absDiffSum += Math.abs(primary[i] - shadow[i]);
      }
      this.valuesCompared += width;
      this.rowsCompared++;
      if (ap === as) this.rowsAgreed++;
    }
    this.latencyDiffSum += shadowMs - primaryMs;
    this.shadowTotal.record(shadowMs);
    this.primaryTotal.record(primaryMs);
  }

  summary() {
    const s = this.shadowTotal.summary();
    const p = this.primaryTotal.summary();
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return {
      mirrored: this.mirrored,
      completed: this.completed,
      failed: this.failed,
      rowsCompared: this.rowsCompared,
      agreement: this.rowsCompared > 0 ? this.rowsAgreed / this.rowsCompared : null,
      meanAbsDiff: this.valuesCompared > 0 ? this.absDiffSum / this.valuesCompared : null,
      latencyDiffMs: {
        mean: this.completed > 0 ? r(this.latencyDiffSum / this.completed) : null,
        p50: r(s.p50 - p.p50),
        p95: r(s.p95 - p.p95),
        p99: r(s.p99 - p.p99),
      },
      shadowLatencyMs: s,
      primaryLatencyMs: p,
    };
  }
}

/**
 * The in-process routing state of one deployment: its targets, its policy (weighted split,
 * sticky or not; a bandit; primary plus shadow) and its traffic statistics. Pure apart from the
 * injected randomness: version resolution, loading and I/O belong to Serving.
 */
export class DeploymentRuntime {
  record!: DeploymentRecord;
  targets: Target[] = [];
  bandit: Bandit | null = null;
  readonly since = Date.now();
  readonly latency = new LatencySet();
  readonly rate = new RateWindow();
  requests = 0;
  readonly errors = new Map<string, number>();
  perTarget = new Map<string, TargetStats>();
  readonly shadow = new ShadowStats();
  /** Bandit state changed since it was last written to the store. */
  dirty = false;

  constructor(
    record: DeploymentRecord,
    private readonly rng: Rng = Math.random,
  ) {
    this.configure(record);
  }

  /** Apply a (new) record; keeps statistics and the bandit arms of targets that stay. */
  configure(record: DeploymentRecord): void {
    this.record = record;
    this.targets = targetsOf(record.routing);
    for (const t of this.targets) if (!this.perTarget.has(t.key)) this.perTarget.set(t.key, new TargetStats());
    if (record.routing.mode === 'bandit') {
      const saved = (this.bandit?.snapshot() ?? (record.state as { arms?: ArmState[] } | undefined)?.arms ?? []) as ArmState[];
      this.bandit = new Bandit(record.routing.algorithm, this.targets.map((t) => t.key), saved, this.rng);
    } else {
      this.bandit = null;
    }
  }

  /** Index of the target that serves a request. */
  choose(routingKey: string | undefined): number {
    const r = this.record.routing;
    if (r.mode === 'shadow') return 0;
    if (r.mode === 'bandit') {
      this.dirty = true;
      return this.bandit!.choose();
    }
    const total = this.targets.reduce((s, t) => s + t.weight, 0);
    const u = (r.sticky && routingKey !== undefined ? hashFraction(`${this.record.name}\u0000${routingKey}`) : this.rng()) * total;
    let acc = 0;
    for (let i = 0; i < this.targets.length; i++) {
      acc += this.targets[i].weight;
      if (u < acc) return i;
    }
    return this.targets.length - 1;
  }

  /** The shadow target when this request is mirrored (decided by a hash of its id). */
  shadowFor(requestId: string): Target | null {
    const r = this.record.routing;
    if (r.mode !== 'shadow') return null;
    return hashFraction(`shadow\u0000${requestId}`) * 100 < r.percent ? this.targets[1] : null;
  }

  /** One request answered. */
  observe(queueMs: number, computeMs: number, totalMs: number): void {
    this.requests++;
    this.rate.add();
    this.latency.record(queueMs, computeMs, totalMs);
  }

  error(code: string, targetKey?: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    if (targetKey) {
      const t = this.perTarget.get(targetKey);
      if (t) t.errors++;
    }
  }

  /** The record's state to persist (bandit arms). */
  state(): unknown {
    return this.bandit ? { arms: this.bandit.snapshot() } : undefined;
  }
}
