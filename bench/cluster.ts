/**
 * Cluster benchmark (issue 14): three `flotilla serve --cluster-redis-url` processes on one host
 * (SQLite + file blobs, a real redis-server on loopback) against one plain node, same devices.
 *  - cross-node bytes per round: partials actually sent (nodes x model) vs the raw report bytes
 *    the followers folded (what forwarding raw reports to the leader would have moved);
 *  - failover: leader SIGKILL -> next committed version, median of --kills;
 *  - round overhead: median round duration with instantly-answering devices, 1 node vs 3 nodes.
 *
 *   npx tsx bench/cluster.ts [--devices 30] [--rounds 4] [--kills 3] [--preset mnist-mlp]
 */
import { parseArgs } from 'node:util';
import { buildPreset, specOf, type PresetName } from '@flotilla/model';
import { startRedis } from '../test/helpers/redis.js';
import { admin, ClusterDevice, startCluster, until } from '../test/helpers/cluster.js';
import { startChildServer, type ChildServer } from '../test/helpers/child-server.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { devices: { type: 'string', default: '30' }, rounds: { type: 'string', default: '4' }, kills: { type: 'string', default: '3' }, preset: { type: 'string', default: 'mnist-mlp' } } });
const D = Number(values.devices);
const R = Number(values.rounds);
const K = Number(values.kills);
const preset = values.preset as PresetName;
const built = buildPreset(preset);
const P = specOf(built.model, built.numClasses).weights.length;
built.model.dispose();
const mib = (b: number) => (b / 2 ** 20).toFixed(2);
const plan = { clientsPerRound: D, overSelect: 1, minReports: 1, maxRounds: 10_000, roundDeadlineMs: 60_000 };

async function roundsOf(s: ChildServer, fromRound: number): Promise<Array<{ round: number; state: string; durationMs: number | null }>> {
  return ((await admin(s, 'GET', '/api/v1/tasks/t/rounds?limit=100')).rounds as Array<{ round: number; state: string; durationMs: number | null }>).filter((r) => r.round > fromRound);
}

async function drive(nodes: ChildServer[], rounds: number): Promise<{ devices: ClusterDevice[]; durations: number[]; done: number[] }> {
  await admin(nodes[0], 'POST', '/api/v1/tasks', { id: 't', preset, plan });
  const devices = Array.from({ length: D }, (_, k) => new ClusterDevice(() => nodes.map((n) => n.url), k % nodes.length, k, 't', nodes[0].deviceToken, P));
  await until(() => devices.every((d) => d.hellos > 0), 'devices connected', 120_000);
  await admin(nodes[0], 'POST', '/api/v1/tasks/t/start');
  await until(async () => (await roundsOf(nodes[0], 1)).filter((r) => r.state === 'done').length >= rounds, 'rounds', 600_000);
  const done = (await roundsOf(nodes[0], 1)).filter((r) => r.state === 'done'); // round 1 (warm-up) left out
  return { devices, durations: done.map((r) => r.durationMs ?? 0), done: done.map((r) => r.round) };
}

// ---- one node (no cluster) ----
const single = await startChildServer({ startTimeoutMs: 180_000 });
const one = await drive([single], R);
one.devices.forEach((d) => d.close());
await single.stop();
console.log(`1 node : ${D} devices connected, ${preset} (${P} parameters), median round ${median(one.durations).toFixed(0)} ms over ${one.durations.length} rounds`);

// ---- three nodes ----
const redis = await startRedis();
const cluster = await startCluster(redis.url, 3, 3000);
try {
  const three = await drive(cluster.nodes, R);
  const view = await until(async () => {
    const v = await admin(cluster.nodes[0], 'GET', '/api/v1/cluster');
    const leader = v.tasks[0].leader;
    // the size of one partial is all that is read from the counters; the bytes per round come from the round records
    return v.nodes.length === 3 && v.nodes.some((n: { id: string; stats: { partialsSent: number } }) => n.id !== leader && n.stats.partialsSent > 0) ? v : null;
  }, 'heartbeats');
  const takeovers = view.nodes.reduce((s: number, n: { stats: { takeovers: number } }) => s + n.stats.takeovers, 0);
  if (takeovers > 1) console.log(`note: the lease changed hands ${takeovers - 1} time(s) during the measured rounds (a node stalled past its lease under load)`);
  const leader = view.tasks[0].leader;
  const followers = view.nodes.filter((n: { id: string }) => n.id !== leader);
  const sent = view.nodes.reduce((s: number, n: { stats: { partialBytesSent: number } }) => s + n.stats.partialBytesSent, 0);
  const sentN = view.nodes.reduce((s: number, n: { stats: { partialsSent: number } }) => s + n.stats.partialsSent, 0);
  const partialBytes = sent / sentN;
  // Per committed round (the rounds the durations cover): the raw f32 reports of devices on
  // followers (what forwarding reports to the leader would move) against one partial per
  // follower that folded any. Counted from the round records, so rounds still in flight when the
  // nodes' counters were read do not skew it.
  let rawRound = 0;
  let partialRound = 0;
  for (const round of three.done) {
    const r = await admin(cluster.nodes[0], 'GET', `/api/v1/tasks/t/rounds/${round}`);
    const nodesWithReports = new Set<string>();
    for (const id of r.reported as string[]) {
      const node = `n${three.devices[Number(id.slice(4))].nodeIndex % 3}`;
      if (node === leader) continue;
      nodesWithReports.add(node);
      rawRound += 4 * P;
    }
    partialRound += nodesWithReports.size * partialBytes;
  }
  rawRound /= three.done.length;
  partialRound /= three.done.length;
  console.log(`3 nodes: ${D} devices connected (${view.nodes.map((n: { id: string; devices: number }) => `${n.id}:${n.devices}`).join(' ')}), median round ${median(three.durations).toFixed(0)} ms over ${three.durations.length} rounds; ratio 3-node/1-node round time ${(median(three.durations) / median(one.durations)).toFixed(2)}x`);
  console.log(`cross-node bytes per round: partials ${mib(partialRound)} MiB (${followers.length} followers x ${mib(partialBytes)} MiB) vs raw reports of devices on followers ${mib(rawRound)} MiB (${(rawRound / (4 * P)).toFixed(1)} reports x ${mib(4 * P)} MiB) -> forwarding raw would move ${(rawRound / partialRound).toFixed(1)}x more`);

  // ---- failover ----
  const times: number[] = [];
  for (let k = 0; k < K; k++) {
    const v = await admin(cluster.nodes.find((n) => n.proc.exitCode === null)!, 'GET', '/api/v1/cluster');
    const i = Number(String(v.tasks[0].leader).slice(1));
    const live = cluster.nodes.find((_, j) => j !== i)!;
    const before = (await admin(live, 'GET', '/api/v1/tasks/t')).currentVersion;
    const t0 = Date.now();
    await cluster.nodes[i].stop('SIGKILL');
    await until(async () => (await admin(live, 'GET', '/api/v1/tasks/t')).currentVersion > before, 'commit after failover', 300_000);
    times.push(Date.now() - t0);
    console.log(`failover ${k + 1}: leader n${i} killed -> next committed version after ${times[k]} ms`);
    await cluster.restart(i);
  }
  console.log(`failover median ${median(times)} ms over ${K} leader kills (lease ${view.leaseMs} ms; includes one full round)`);
  three.devices.forEach((d) => d.close());
} finally {
  await cluster.stop();
  await redis.stop();
}
