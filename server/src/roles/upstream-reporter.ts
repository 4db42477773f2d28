import type { Serving } from '../serving/serving.js';
import type { EdgeStore } from './edge-store.js';
import type { RegistryMirror } from './registry-mirror.js';
import type { UpstreamClient } from './upstream-client.js';

export interface ReporterStatus {
  sent: number;
  failed: number;
  lastSentAt: number | null;
  lastError: string | null;
}

/**
 * Pushes a replica's or sidecar's latency stats and sampled payloads to the coordinator
 * (POST /api/v1/edge/reports) every `intervalMs`. Contracts: stats are cumulative per loaded
 * version (a lost report loses nothing but freshness); payloads leave the outbox only when the
 * upstream accepted them, and go back to it otherwise; a failure never throws out of the timer.
 */
export class UpstreamReporter {
  readonly status: ReporterStatus = { sent: 0, failed: 0, lastSentAt: null, lastError: null };
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: { client: UpstreamClient; serving: Serving; store: EdgeStore; mirror: RegistryMirror; source: string; kind: 'replica' | 'sidecar' },
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.report(), this.intervalMs);
    this.timer.unref();
  }

  async report(): Promise<boolean> {
    const { serving, store } = this.deps;
    await serving.payloads.flush();
    const payloads = store.takePayloads(500);
    const models = serving.cache.list().map((m) => ({
      model: m.record.model,
      version: m.record.version,
      variant: m.variant,
      requests: m.requests,
      errors: m.errors,
      queueDepth: m.batcher.queued,
      latencyMs: m.latency.summary().total,
    }));
    try {
      await this.deps.client.json('POST', '/api/v1/edge/reports', { source: this.deps.source, kind: this.deps.kind, synced: this.deps.mirror.status.synced, models, payloads });
      this.status.sent++;
      this.status.lastSentAt = Date.now();
      this.status.lastError = null;
      return true;
    } catch (err) {
      store.returnPayloads(payloads);
      this.status.failed++;
      this.status.lastError = (err as Error).message;
      return false;
    }
  }

  /** Stops the timer and makes one last attempt (close). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.report();
  }
}
