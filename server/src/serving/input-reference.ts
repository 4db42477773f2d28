import { AppError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { Store } from '../store/store.js';
import { StatsAccumulator, driftSummary, type DriftSummary, type FeatureStats } from './drift.js';
import type { ParsedInput } from './infer-input.js';
import type { ServedModel } from './model-cache.js';

export interface DriftReport {
  model: string;
  version: number;
  reference: { source: string; count: number; createdAt: number } | null;
  summary: DriftSummary;
}

/**
 * Drift references (per-feature input statistics of a version) and drift summaries. The registry
 * records no input statistics at publish, so a version without a reference gets one from the
 * first `window` rows it serves after its first load in this process (`source: 'first-window'`),
 * unless one is recorded through `put` (`source: 'publish'` by default). References live in the
 * Store; the current statistics come from the version's logged payloads.
 */
export class InputReferences {
  private readonly pending = new Map<string, StatsAccumulator | 'done'>();

  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
    private readonly window: number,
    private readonly logger: { warn(obj: object, msg?: string): void },
  ) {}

  /** Called after a version loads: start recording its reference unless the store has one. */
  async start(m: ServedModel): Promise<void> {
    const key = `${m.record.model}\u0000${m.record.version}`;
    if (this.pending.has(key)) return;
    this.pending.set(key, 'done'); // until the store says otherwise
    try {
      if (!(await this.store.getInputStats(m.record.model, m.record.version))) this.pending.set(key, new StatsAccumulator(m.io.rowWidth));
    } catch (err) {
      this.logger.warn({ err }, 'serving: could not read input statistics');
    }
  }

  /** Called with every served input; writes the reference once the window is full. */
  feed(m: ServedModel, input: ParsedInput): void {
    const key = `${m.record.model}\u0000${m.record.version}`;
    const acc = this.pending.get(key);
    if (!acc || acc === 'done') return;
    acc.add(input.data);
    if (acc.count < this.window) return;
    this.pending.set(key, 'done');
    void this.store
      .putInputStats({ model: m.record.model, version: m.record.version, ...acc.stats(), source: 'first-window', createdAt: Date.now() })
      .catch((err) => this.logger.warn({ err }, 'serving: could not record input statistics'));
  }

  /** Record a version's reference (e.g. by the publisher, from its training data). */
  async put(model: string, version: number, s: FeatureStats, source = 'publish'): Promise<void> {
    const width = await this.width(model, version);
    if (s.mean.length !== width || s.variance.length !== width) {
      throw new AppError('FL_ERR_SERVING_BAD_INPUT', { why: 'statistics need one mean and one variance per input feature', features: width });
    }
    await this.store.putInputStats({ model, version, ...s, source, createdAt: Date.now() });
    this.pending.set(`${model}\u0000${version}`, 'done');
  }

  /** The version's logged inputs against its reference. */
  async drift(model: string, version: number, threshold: number): Promise<DriftReport> {
    const width = await this.width(model, version);
    const ref = await this.store.getInputStats(model, version);
    const acc = new StatsAccumulator(width);
    for (const p of await this.store.listPayloads(model, { version })) if (p.input.data.length % width === 0) acc.add(p.input.data);
    const empty = { count: 0, mean: new Array<number>(width).fill(0), variance: new Array<number>(width).fill(0) };
    return {
      model,
      version,
      reference: ref ? { source: ref.source, count: ref.count, createdAt: ref.createdAt } : null,
      summary: driftSummary(ref ?? empty, acc.stats(), threshold),
    };
  }

  private async width(model: string, version: number): Promise<number> {
    const record = await this.registry.getVersion(model, version);
    return record.spec.inputShape.reduce((a, b) => a * b, 1);
  }
}
