import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f32Codec, REPORT_META_HEADER, type FitUpload } from '@flotilla/protocol';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { admin, ClusterDevice, deltaOf, examplesOf, showClusterOutputOnFailure, startCluster, until, weightsOf, type TestCluster } from '../helpers/cluster.js';

const P = 195; // tiny-mlp
if (redisSkipReason) console.warn(`skipping cluster report-upload test: ${redisSkipReason}`);

/**
 * The upload channel in cluster mode (docs/cluster.md): the leader issues the tokens, the node a
 * device is connected to checks them (the round's key came with the leader's `open`) and folds the
 * report into its partial; an upload sent to another node (a load balancer's doing) gets
 * FL_ERR_REPORT_WRONG_NODE, uses nothing up, and the device can upload to its own node after.
 */
describe.skipIf(redisSkipReason !== null)('cluster: report uploads', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  showClusterOutputOnFailure(() => cluster);
  const devices: ClusterDevice[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, 2);
  }, 240_000);
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await cluster?.stop();
    await redis?.stop();
  });

  it('folds uploads on the device node, refuses them on the other with a coded error, and commits the single-node aggregate', async () => {
    const [a, b] = cluster.nodes;
    await admin(a, 'POST', '/api/v1/tasks', { id: 'u', preset: 'tiny-mlp', plan: { clientsPerRound: 4, overSelect: 1, minReports: 4, maxRounds: 1, roundDeadlineMs: 30_000 } });
    const offers = new Map<number, string>();
    for (let k = 0; k < 4; k++) {
      const d = new ClusterDevice(() => cluster.nodes.map((n) => n.url), k % 2, k, 'u', a.deviceToken, P);
      d.answering = false;
      d.socket!.on('fit:upload', (m: FitUpload) => offers.set(k, m.url));
      devices.push(d);
    }
    await until(() => devices.every((d) => d.hellos > 0), 'devices connected');
    await until(async () => (await admin(b, 'GET', '/api/v1/cluster')).tasks[0]?.leader, 'a leader');
    await admin(a, 'POST', '/api/v1/tasks/u/start');
    await until(() => offers.size === 4, 'upload offers');
    const put = async (k: number, node: number) => {
      const res = await fetch(new URL(offers.get(k)!, cluster.nodes[node].url), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', [REPORT_META_HEADER]: JSON.stringify({ numExamples: examplesOf(k), metrics: { loss: 1 }, codec: 'f32' }) },
        body: f32Codec.encode(deltaOf(k, 1, P)) as Uint8Array<ArrayBuffer>,
      });
      return { status: res.status, json: await res.json() };
    };
    for (const d of devices) {
      const own = d.nodeIndex % 2;
      const wrong = await put(d.k, 1 - own);
      expect([wrong.status, wrong.json.error?.code]).toEqual([421, 'FL_ERR_REPORT_WRONG_NODE']);
      expect((await put(d.k, own)).json).toEqual({ ok: true });
    }
    await until(async () => (await admin(a, 'GET', '/api/v1/tasks/u')).state === 'done', 'the round committed', 60_000);
    const before = await weightsOf(a, 'u', 1);
    const after = await weightsOf(b, 'u', 2);
    const sum = new Float64Array(P);
    let total = 0;
    for (let k = 0; k < 4; k++) {
      const d = deltaOf(k, 1, P);
      for (let i = 0; i < P; i++) sum[i] += examplesOf(k) * d[i];
      total += examplesOf(k);
    }
    let maxErr = 0;
    for (let i = 0; i < P; i++) maxErr = Math.max(maxErr, Math.abs(after[i] - (before[i] + sum[i] / total)));
    expect(maxErr).toBeLessThan(1e-6);
  });
});
