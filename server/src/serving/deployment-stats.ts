import type { DeploymentRuntime } from './router.js';

const r3 = (x: number) => Math.round(x * 1000) / 1000;

export interface StatsContext {
  /** Version a target's ref resolves to now. */
  resolve(model: string, ref: string): Promise<number>;
  /** Cold start of a loaded version, or null when it is not loaded. */
  coldStartMs(model: string, version: number, variant: string): number | null;
  /** Served requests of the deployment still awaiting bandit feedback. */
  awaitingFeedback: number;
}

/**
 * What `GET /api/v1/deployments/{name}/stats` answers: totals, latency percentiles (queue,
 * compute, total), throughput over the last minute, errors by code, per-target traffic (and the
 * versions each served), bandit arms and shadow comparison. Counters are per process, since
 * the deployment runtime was created.
 */
export async function deploymentStats(rt: DeploymentRuntime, ctx: StatsContext) {
  const r = rt.record.routing;
  const versions = [];
  for (const [key, s] of rt.perTarget) {
    const t = rt.targets.find((x) => x.key === key);
    let currentVersion: number | null = null;
    let coldStartMs: number | null = null;
    if (t) {
      try {
        currentVersion = await ctx.resolve(rt.record.model, t.ref);
        const c = ctx.coldStartMs(rt.record.model, currentVersion, t.variant);
        coldStartMs = c === null ? null : r3(c);
      } catch {
        currentVersion = null;
      }
    }
    const isShadow = r.mode === 'shadow' && !!t && key === rt.targets[1].key;
    versions.push({
      target: key,
      routed: !!t,
      ...(t && r.mode === 'split' ? { weight: t.weight } : {}),
      ...(t && r.mode === 'shadow' ? { role: isShadow ? 'shadow' : 'primary' } : {}),
      currentVersion,
      coldStartMs,
      requests: s.requests,
      share: rt.requests > 0 && !isShadow ? s.requests / rt.requests : 0,
      errors: s.errors,
      byVersion: Object.fromEntries(s.versions),
      latencyMs: s.latency.summary(),
    });
  }
  const errorCount = [...rt.errors.values()].reduce((a, b) => a + b, 0);
  return {
    deployment: rt.record.name,
    model: rt.record.model,
    mode: r.mode,
    since: rt.since,
    requests: rt.requests,
    errors: errorCount,
    errorsByCode: Object.fromEntries(rt.errors),
    errorRate: rt.requests + errorCount > 0 ? errorCount / (rt.requests + errorCount) : 0,
    throughput: r3(rt.rate.perSecond()),
    latencyMs: rt.latency.summary(),
    versions,
    bandit: rt.bandit ? { algorithm: rt.bandit.algorithm, arms: rt.bandit.summary(), awaitingFeedback: ctx.awaitingFeedback } : null,
    shadow: r.mode === 'shadow' ? { target: rt.targets[1].key, percent: r.percent, ...rt.shadow.summary() } : null,
  };
}
