import { Counter, Gauge, type Registry } from 'prom-client';
import type { Serving } from './serving.js';

/**
 * Serving's Prometheus series, registered into an app's prom-client registry (the all-in-one
 * server's and a replica's or sidecar's alike). `flotilla_serving_queue_depth` is what the
 * serving tier autoscales on (docs/deploy.md): requests waiting in a version's batcher now,
 * per model, version and variant; a scraper adds the pod label. Read at scrape time.
 */
export function registerServingMetrics(reg: Registry, serving: Serving): void {
  const models = () => serving.cache.list();
  const labels = (m: ReturnType<typeof models>[number]) => ({ model: m.record.model, version: String(m.record.version), variant: m.variant });
  new Gauge({
    name: 'flotilla_serving_queue_depth',
    help: 'Inference requests queued in the batcher of a loaded version now (waiting for a batch slot)',
    labelNames: ['model', 'version', 'variant'],
    registers: [reg],
    collect() {
      this.reset();
      for (const m of models()) this.set(labels(m), m.batcher.queued);
    },
  });
  new Counter({
    name: 'flotilla_serving_requests_total',
    help: 'Inference requests answered by a loaded version since it was loaded',
    labelNames: ['model', 'version', 'variant'],
    registers: [reg],
    collect() {
      this.reset();
      for (const m of models()) this.inc(labels(m), m.requests);
    },
  });
  new Counter({
    name: 'flotilla_serving_errors_total',
    help: 'Inference requests of a loaded version that failed',
    labelNames: ['model', 'version', 'variant'],
    registers: [reg],
    collect() {
      this.reset();
      for (const m of models()) this.inc(labels(m), m.errors);
    },
  });
  new Gauge({
    name: 'flotilla_serving_latency_seconds',
    help: 'End-to-end inference latency of a loaded version (quantiles over its recent requests)',
    labelNames: ['model', 'version', 'variant', 'quantile'],
    registers: [reg],
    collect() {
      this.reset();
      for (const m of models()) {
        const t = m.latency.summary().total;
        if (t.count === 0) continue;
        for (const [q, v] of [['0.5', t.p50], ['0.95', t.p95], ['0.99', t.p99]] as const) this.set({ ...labels(m), quantile: q }, v / 1000);
      }
    },
  });
  new Gauge({
    name: 'flotilla_serving_cold_start_seconds',
    help: 'Load plus warm-up time of a loaded version',
    labelNames: ['model', 'version', 'variant'],
    registers: [reg],
    collect() {
      this.reset();
      for (const m of models()) this.set(labels(m), m.coldStartMs / 1000);
    },
  });
  new Gauge({
    name: 'flotilla_serving_loaded_bytes',
    help: 'Resident bytes of loaded versions together',
    registers: [reg],
    collect() {
      this.set(serving.cache.totalBytes);
    },
  });
}
