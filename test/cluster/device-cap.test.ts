import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisSkipReason, startRedis, type TestRedis } from '../helpers/redis.js';
import { admin, showClusterOutputOnFailure, startCluster, until, type TestCluster } from '../helpers/cluster.js';
import { RawDevice } from '../helpers/raw-device.js';

if (redisSkipReason) console.warn(`skipping the cluster device cap test: ${redisSkipReason}`);

/**
 * The per-credential device cap (`--max-devices-per-token`, docs/api.md "Devices") holds across
 * the cluster (docs/cluster.md): device ids enrolled on either node count against one limit. Before
 * the shared count, each node counted the store once at first use and then only its own
 * enrolments, so a node that had counted early kept admitting new ids past the cap.
 */
describe.skipIf(redisSkipReason !== null)('cluster: the device cap per credential is cluster-wide', () => {
  let redis: TestRedis;
  let cluster: TestCluster;
  showClusterOutputOnFailure(() => cluster);
  const devices: RawDevice[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, 2, 3000, { FLOTILLA_MAX_DEVICES_PER_TOKEN: '3' });
  }, 240_000);
  afterAll(async () => {
    devices.forEach((d) => d.close());
    await cluster?.stop();
    await redis?.stop();
  });

  const hello = async (node: number, deviceId: string) => {
    const d = new RawDevice(cluster.nodes[node].url);
    devices.push(d);
    const ack = await d.hello(cluster.nodes[node].deviceToken, 'cap', { deviceId });
    return { d, ack };
  };

  it('refuses a new id past the cap on the second node, lets enrolled ids move between nodes, and a disconnect frees no slot', async () => {
    const [a] = cluster.nodes;
    await admin(a, 'POST', '/api/v1/tasks', { id: 'cap', preset: 'tiny-mlp', plan: { clientsPerRound: 1 } });
    // n1 loads a task created on n0 once it reads the announcement (a device there is refused
    // FL_ERR_TASK_NOT_FOUND until then); the cap is what this test is about, so wait for it.
    await until(() => admin(cluster.nodes[1], 'GET', '/api/v1/tasks/cap'), 'n1 has loaded the task');
    // n1 counts first (one id), then n0 enrols two: three ids on the credential, across two nodes.
    const first = await hello(1, 'c1');
    expect(first.ack.ok, JSON.stringify(first.ack)).toBe(true);
    for (const id of ['c2', 'c3']) {
      const { ack } = await hello(0, id);
      expect(ack.ok, `${id}: ${JSON.stringify(ack)}`).toBe(true);
    }
    // A fourth id is refused on either node, with the coded error and its limit.
    for (const node of [1, 0]) {
      const refused = (await hello(node, `c4-on-n${node}`)).ack;
      expect(refused.ok, `node n${node}`).toBe(false);
      expect(refused.error.code).toBe('FL_ERR_CLIENT_CAP_REACHED');
      expect(refused.error.details).toMatchObject({ limit: 3 });
    }
    // An enrolled id is not a new one: c1 leaves n1 and connects to n0 (as behind a load balancer).
    first.d.close();
    expect((await hello(0, 'c1')).ack.ok).toBe(true);
    // Enrolments last as long as their records (as on one node): the disconnect freed no slot.
    const c5 = (await hello(1, 'c5')).ack;
    expect(c5.ok).toBe(false);
    expect(c5.error.code).toBe('FL_ERR_CLIENT_CAP_REACHED');
    // The store holds the three enrolled records (written behind, within a second), no more.
    const ids = await until(async () => {
      const listed = await admin(a, 'GET', '/api/v1/clients?limit=100');
      return listed.total === 3 ? (listed.clients as Array<{ id: string }>).map((c) => c.id).sort() : null;
    }, 'three client records');
    expect(ids).toEqual(['c1', 'c2', 'c3']);
  });
});
