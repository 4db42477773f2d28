import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Coordinator } from '../coordinator/coordinator.js';
import type { RoundRecord, TaskState } from '../store/records.js';

const TASK_STATES: readonly TaskState[] = ['created', 'running', 'paused', 'stopped', 'done', 'failed'];

/**
 * Prometheus metrics of one app instance, in their own prom-client Registry (tests build many
 * apps in one process; the global registry would collide). Counters the coordinator already keeps
 * (`coordinator.stats`) are read at scrape time; per-round figures are observed from the
 * coordinator's 'round' event when a round ends (committed or failed).
 *
 * Names follow Prometheus conventions: counters end in `_total`, units are `_seconds`/`_bytes`.
 */
export class FlotillaMetrics {
  readonly registry = new Registry();
  private readonly onRound: (r: RoundRecord) => void;

  constructor(private readonly coordinator: Coordinator, opts: { processMetrics?: boolean } = {}) {
    const reg = this.registry;
    const c = coordinator;
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: reg });

    new Gauge({
      name: 'flotilla_connected_devices',
      help: 'Device sessions connected now, by task',
      labelNames: ['task'],
      registers: [reg],
      collect() {
        this.reset();
        for (const r of c.listRunners()) this.set({ task: r.id }, c.sessions.forTask(r.id).length);
      },
    });
    const fromStats = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [reg],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    fromStats('flotilla_rounds_started_total', 'Rounds started (devices instructed)', () => c.stats.roundsStarted);
    fromStats('flotilla_rounds_committed_total', 'Rounds aggregated and committed as a new version', () => c.stats.roundsCommitted);
    fromStats('flotilla_rounds_failed_total', 'Rounds that failed (too few reports, halted, or commit error)', () => c.stats.roundsFailed);
    fromStats('flotilla_reports_accepted_total', 'Fit reports accepted into an aggregate', () => c.stats.reportsAccepted);
    fromStats('flotilla_reports_uploaded_total', 'Of the accepted fit reports, those received over the HTTP upload channel', () => c.stats.reportsUploaded);
    new Counter({
      name: 'flotilla_reports_rejected_total',
      help: 'Device messages rejected, by error code (invalid reports and protocol errors)',
      labelNames: ['code'],
      registers: [reg],
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(c.stats.rejected)) this.inc({ code }, n);
      },
    });
    new Gauge({
      name: 'flotilla_task_state',
      help: 'Task state: 1 for the state the task is in, 0 for the others',
      labelNames: ['task', 'state'],
      registers: [reg],
      collect() {
        this.reset();
        for (const r of c.listRunners()) for (const s of TASK_STATES) this.set({ task: r.id, state: s }, r.record.state === s ? 1 : 0);
      },
    });

    const roundDuration = new Histogram({
      name: 'flotilla_round_duration_seconds',
      help: 'Wall time of a round from selection to commit or failure',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers: [reg],
    });
    const aggregation = new Histogram({
      name: 'flotilla_aggregation_duration_seconds',
      help: 'Aggregation and commit time of committed rounds',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [reg],
    });
    const selection = new Histogram({
      name: 'flotilla_round_selected_devices',
      help: 'Devices selected per round',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
      registers: [reg],
    });
    const bytesUp = new Counter({ name: 'flotilla_update_received_bytes_total', help: 'Encoded update bytes received from devices in ended rounds', registers: [reg] });
    const bytesDown = new Counter({ name: 'flotilla_model_sent_bytes_total', help: 'Global-model bytes devices were instructed to download in ended rounds', registers: [reg] });

    this.onRound = (r: RoundRecord) => {
      if (r.state !== 'done' && r.state !== 'failed') return;
      if (r.endedAt !== undefined) roundDuration.observe({ outcome: r.state === 'done' ? 'committed' : 'failed' }, Math.max(0, r.endedAt - r.startedAt) / 1000);
      if (r.state === 'done' && r.aggregationMs !== undefined) aggregation.observe(r.aggregationMs / 1000);
      selection.observe(r.selected.length);
      bytesUp.inc(r.bytesUp);
      bytesDown.inc(r.bytesDown);
    };
    c.events.on('round', this.onRound);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.coordinator.events.off('round', this.onRound);
    this.registry.clear();
  }
}
