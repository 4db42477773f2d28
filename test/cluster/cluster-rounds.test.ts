import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { admin, ClusterDevice, showClusterOutputOnFailure, deltaOf, examplesOf, startCluster, until, weightsOf, type TestCluster } from '../helpers/cluster.js';

const P = 195; // tiny-mlp parameters
if (redisSkipReason) console.warn(`skipping cluster tests: ${redisSkipReason}`);

/** Recompute FedAvg of version v-1 with the reports of `reported`, as one node would. */
function expectedNext(prev: Float32Array, round: number, reported: string[]): Float32Array {
  const sum = new Float64Array(P);
  let total = 0;
  for (const id of reported) {
    const k = Number(id.slice(4));
    const d = deltaOf(k, round, P);
    for (let i = 0; i < P; i++) sum[i] += examplesOf(k) * d[i];
    total += examplesOf(k);
  }
  const out = new Float32Array(P);
  for (let i = 0; i < P; i++) out[i] = prev[i] + sum[i] / total;
  return out;
}

describe.skipIf(redisSkipReason !== null)('cluster: three coordinators on Redis', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  showClusterOutputOnFailure(() => cluster);
  const devices: ClusterDevice[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, 3);
  }, 240_000);
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await cluster?.stop();
    await redis?.stop();
  });

  it('commits rounds with reports folded on all three nodes, equal to the single-node aggregate', async () => {
    const [a] = cluster.nodes;
    await admin(a, 'POST', '/api/v1/tasks', { id: 't', preset: 'tiny-mlp', plan: { clientsPerRound: 6, overSelect: 1, minReports: 6, maxRounds: 3, roundDeadlineMs: 20_000 } });
    const urls = () => cluster.nodes.map((n) => n.url);
    for (let k = 0; k < 6; k++) devices.push(new ClusterDevice(urls, k % 3, k, 't', a.deviceToken, P));
    await until(() => devices.every((d) => d.hellos > 0), 'devices connected');
    // every node sees the whole fleet and one leader
    const view = await until(async () => {
      const v = await admin(cluster.nodes[2], 'GET', '/api/v1/cluster');
      return v.nodes.length === 3 && v.tasks[0]?.leader ? v : null;
    }, 'three nodes and a leader');
    expect(view.mode).toBe('cluster');
    await admin(cluster.nodes[1], 'POST', '/api/v1/tasks/t/start');
    await until(async () => (await admin(a, 'GET', '/api/v1/tasks/t')).state === 'done', 'three rounds', 90_000);

    const rounds = (await admin(a, 'GET', '/api/v1/tasks/t/rounds')).rounds as Array<{ round: number; state: string; committedVersion?: number; reported: number }>;
    const done = rounds.filter((r) => r.state === 'done').sort((x, y) => x.round - y.round);
    expect(done.map((r) => r.committedVersion), JSON.stringify(rounds.map((r) => [r.round, r.state, (r as { failureReason?: string }).failureReason]))).toEqual([2, 3, 4]);
    let prev = await weightsOf(a, 't', 1);
    for (const summary of done) {
      const r = await admin(a, 'GET', `/api/v1/tasks/t/rounds/${summary.round}`);
      expect(r.reported.length).toBe(6);
      const got = await weightsOf(cluster.nodes[r.round % 3], 't', r.committedVersion!);
      const want = expectedNext(prev, r.round, r.reported);
      let maxErr = 0;
      for (let i = 0; i < P; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
      expect(maxErr).toBeLessThan(1e-6);
      prev = got;
    }
    // Reports were folded on every node: the two followers each sent a partial per round.
    // (other nodes' figures are those of their last heartbeat, a third of a lease old at most)
    const after = await until(async () => {
      const v = await admin(a, 'GET', '/api/v1/cluster');
      return v.nodes.every((n: { stats: { partialsSent: number }; id: string }) => n.id === v.tasks[0].leader || n.stats.partialsSent >= 3) ? v : null;
    }, 'heartbeats with the last partials');
    const leader = after.tasks[0].leader as string;
    expect(after.nodes.map((n: { id: string }) => n.id).sort()).toEqual(['n0', 'n1', 'n2']);
    for (const n of after.nodes) {
      if (n.id === leader) continue;
      expect(n.stats.reportsFolded).toBe(2 * 3); // its two devices, three rounds
      expect(n.stats.partialsSent).toBe(3);
      expect(n.stats.partialBytesSent).toBeLessThan(3 * (8 * P + 1024)); // O(model) per round, not O(reports)
    }
    // The registry answers the same on every node.
    for (const n of cluster.nodes) expect((await admin(n, 'GET', '/api/v1/models/t/aliases')).aliases.find((x: { alias: string }) => x.alias === 'latest').version).toBe(4);
  }, 150_000);

  it('refuses strategies that are not a mergeable sum, and norm screening, with a coded error', async () => {
    const post = (body: unknown) =>
      fetch(`${cluster.nodes[0].url}/api/v1/tasks`, { method: 'POST', headers: { authorization: `Bearer ${cluster.nodes[0].adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    for (const strategy of [{ name: 'fedmedian' }, { name: 'fedtrimmedavg' }, { name: 'krum', params: { byzantine: 1 } }]) {
      const res = await post({ id: `x-${strategy.name}`, preset: 'tiny-mlp', plan: { clientsPerRound: 5, strategy } });
      expect(res.status).toBe(400);
      expect((await res.json()).error.code).toBe('FL_ERR_CLUSTER_UNSUPPORTED');
    }
    const screened = await post({ id: 'x-screened', preset: 'tiny-mlp', plan: { clientsPerRound: 5, screening: { action: 'reject' } } });
    expect((await screened.json()).error.code).toBe('FL_ERR_CLUSTER_UNSUPPORTED');
    const scaffold = await post({ id: 'x-scaffold', preset: 'tiny-mlp', plan: { clientsPerRound: 5, strategy: { name: 'scaffold' } } });
    expect((await scaffold.json()).error, 'SCAFFOLD partials would drop the control sums').toMatchObject({ code: 'FL_ERR_CLUSTER_UNSUPPORTED' });
    // Async tasks and secure aggregation run on one coordinator.
    const asyncTask = await post({ id: 'x-async', preset: 'tiny-mlp', plan: { mode: 'async', concurrency: 4, bufferSize: 4 } });
    expect((await asyncTask.json()).error).toMatchObject({ code: 'FL_ERR_CLUSTER_UNSUPPORTED', details: { option: 'mode' } });
    const secure = await post({ id: 'x-secure', preset: 'tiny-mlp', plan: { clientsPerRound: 5, secureAggregation: { protocol: 'secagg+', threshold: 4, quantization: { bits: 16, clipRange: 1 } } } });
    expect((await secure.json()).error).toMatchObject({ code: 'FL_ERR_CLUSTER_UNSUPPORTED', details: { option: 'secureAggregation' } });
    const ok = await post({ id: 'x-dp', preset: 'tiny-mlp', plan: { clientsPerRound: 5, strategy: { name: 'dpfedavg', params: { noiseMultiplier: 0.5, clipNorm: 1, inner: 'fedadam' } } } });
    expect(ok.status).toBe(201);
  }, 60_000);

  it('a deployment created on one node serves on the others (serving learns of it through the Redis announcement)', async () => {
    const [a, , c] = cluster.nodes;
    const meta = await (await fetch(`${c.url}/v2/models/t`, { headers: { authorization: `Bearer ${c.adminToken}` } })).json();
    const input = meta.inputs[0] as { name: string; shape: number[]; datatype: string };
    const shape = input.shape.map((d) => (d < 0 ? 1 : d));
    const body = JSON.stringify({ inputs: [{ name: input.name, shape, datatype: input.datatype, data: new Array(shape.reduce((x, y) => x * y, 1)).fill(0) }] });
    const infer = () => fetch(`${c.url}/v2/models/pinned/infer`, { method: 'POST', headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' }, body });
    expect((await infer()).status).toBe(404); // no deployment or model of that name yet
    await admin(a, 'POST', '/api/v1/deployments', { name: 'pinned', model: 't', routing: { mode: 'split', targets: [{ ref: 2, weight: 1 }] } });
    const res = await until(async () => {
      const r = await infer();
      return r.status === 200 ? r : null;
    }, 'the deployment served by another node', 20_000);
    expect(res.headers.get('x-model-version')).toBe('2');
    expect(res.headers.get('x-deployment')).toBe('pinned');
  }, 60_000);
});
