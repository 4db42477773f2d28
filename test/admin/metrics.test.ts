import { describe, expect, it } from 'vitest';
import { adminApp } from './admin-helpers.js';

/** /metrics: one registry per app, Prometheus naming, process metrics on by default. */
describe('/metrics', () => {
  it('exposes flotilla and process metrics per app instance, named by Prometheus conventions', async () => {
    const a = await adminApp({ processMetrics: true });
    const b = await adminApp({ processMetrics: true });
    try {
      await a.app.flotilla.coordinator.startTask('t1');
      const ra = await a.call({ method: 'GET', url: '/metrics', token: a.viewer });
      const rb = await b.call({ method: 'GET', url: '/metrics' });
      expect(ra.status).toBe(200);
      expect(String(ra.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(ra.body).toMatch(/flotilla_task_state\{task="t1",state="running"\} 1/);
      expect(rb.body).toMatch(/flotilla_task_state\{task="t1",state="created"\} 1/);
      for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
        expect(ra.body, name).toContain(`# TYPE ${name} `);
      }
      const types = new Map([...ra.body.matchAll(/^# TYPE (flotilla_\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
      expect([...types.keys()].sort()).toEqual([
        'flotilla_aggregation_duration_seconds',
        'flotilla_connected_devices',
        'flotilla_model_sent_bytes_total',
        'flotilla_reports_accepted_total',
        'flotilla_reports_rejected_total',
        'flotilla_reports_uploaded_total',
        'flotilla_round_duration_seconds',
        'flotilla_round_selected_devices',
        'flotilla_rounds_committed_total',
        'flotilla_rounds_failed_total',
        'flotilla_rounds_started_total',
        'flotilla_serving_cold_start_seconds',
        'flotilla_serving_errors_total',
        'flotilla_serving_latency_seconds',
        'flotilla_serving_loaded_bytes',
        'flotilla_serving_queue_depth',
        'flotilla_serving_requests_total',
        'flotilla_task_state',
        'flotilla_update_received_bytes_total',
      ]);
      for (const [name, type] of types) {
        if (type === 'counter') expect(name, name).toMatch(/_total$/);
        if (name.endsWith('_total')) expect(type, name).toBe('counter');
      }
      expect((await a.call({ method: 'GET', url: '/metrics', token: a.device })).status).toBe(403);
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });
});
