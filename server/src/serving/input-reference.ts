import { AppError } from '../errors.js';
import type { Registry } from '../registry/registry.js';
import type { Store } from '../store/store.js';
import type { PayloadRecord } from '../store/records.js';
import { StatsAccumulator, driftSummary, type DriftSummary, type FeatureStats } from './drift.js';

export interface DriftReport {
  model: string;
  version: number;
  reference: { source: string; count: number; createdAt: number } | null;
  summary: DriftSummary;
}

/** Which logged payloads an operator confirms as a version's reference. */
export interface ReferenceWindow {
  /** Payloads logged at or after this time (ms since the epoch). Default: all. */
  since?: number;
  /** Payloads logged at or before this time. Default: now. */
  until?: number;
  /** Fewer distinct requests in the window than this: FL_ERR_SERVING_REFERENCE_WINDOW. Default 20. */
  minRequests?: number;
  /** Rows one request contributes at most (its first ones), so no caller outweighs the rest. Default 4. */
  rowsPerRequest?: number;
  /** Compute and answer the statistics without recording them. */
  dryRun?: boolean;
}

export interface ConfirmedReference extends FeatureStats {
  source: string;
  requests: number;
  since: number | null;
  until: number;
  recorded: boolean;
}

/**
 * Drift references (per-feature input statistics of a version) and drift summaries. A reference
 * is only ever recorded deliberately: by the publisher (`put`, e.g. from its training data,
 * `source: 'publish'`), or by an operator confirming a window of logged payloads
 * (`confirmWindow`, `source: 'confirmed-window'`), where every request counts for at most
 * `rowsPerRequest` rows and a minimum number of distinct requests is required. Serving traffic
 * never sets one by itself, so an early caller cannot choose what later traffic is compared with.
 * References live in the Store; current statistics come from the version's logged payloads.
 */
export class InputReferences {
  constructor(
    private readonly store: Store,
    private readonly registry: Registry,
  ) {}

  /** Record a version's reference (e.g. by the publisher, from its training data). */
  async put(model: string, version: number, s: FeatureStats, source = 'publish'): Promise<void> {
    const width = await this.width(model, version);
    if (s.mean.length !== width || s.variance.length !== width) {
      throw new AppError('FL_ERR_SERVING_BAD_INPUT', { why: 'statistics need one mean and one variance per input feature', features: width });
    }
    await this.store.putInputStats({ model, version, ...s, source, createdAt: Date.now() });
  }

  /** Statistics of a window of the version's logged payloads; recorded as its reference unless `dryRun`. */
  async confirmWindow(model: string, version: number, w: ReferenceWindow): Promise<ConfirmedReference> {
    const width = await this.width(model, version);
    const until = w.until ?? Date.now();
    const minRequests = w.minRequests ?? 20;
    const perRequest = w.rowsPerRequest ?? 4;
    const acc = new StatsAccumulator(width);
    const ids = new Set<string>();
    for (const p of await this.logged(model, version)) {
      if (p.at > until || (w.since !== undefined && p.at < w.since) || ids.has(p.requestId) || p.input.data.length % width !== 0) continue;
      ids.add(p.requestId);
      acc.add(p.input.data.slice(0, perRequest * width));
    }
    if (ids.size < minRequests) {
      throw new AppError('FL_ERR_SERVING_REFERENCE_WINDOW', { model, version, requests: ids.size, minRequests, since: w.since ?? null, until });
    }
    const stats = acc.stats();
    const source = 'confirmed-window';
    if (!w.dryRun) await this.store.putInputStats({ model, version, ...stats, source, createdAt: Date.now() });
    return { ...stats, source, requests: ids.size, since: w.since ?? null, until, recorded: !w.dryRun };
  }

  /** The version's logged inputs against its reference ('insufficient-data' without one). */
  async drift(model: string, version: number, threshold: number): Promise<DriftReport> {
    const width = await this.width(model, version);
    const ref = await this.store.getInputStats(model, version);
    const acc = new StatsAccumulator(width);
    for (const p of await this.logged(model, version)) if (p.input.data.length % width === 0) acc.add(p.input.data);
    const empty = { count: 0, mean: new Array<number>(width).fill(0), variance: new Array<number>(width).fill(0) };
    return {
      model,
      version,
      reference: ref ? { source: ref.source, count: ref.count, createdAt: ref.createdAt } : null,
      summary: driftSummary(ref ?? empty, acc.stats(), threshold),
    };
  }

  private logged(model: string, version: number): Promise<PayloadRecord[]> {
    return this.store.listPayloads(model, { version });
  }

  private async width(model: string, version: number): Promise<number> {
    const record = await this.registry.getVersion(model, version);
    return record.spec.inputShape.reduce((a, b) => a * b, 1);
  }
}
