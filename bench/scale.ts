/**
 * Scale benchmark (issue 7). One coordinator in a child process; devices in separate loader
 * processes on loopback.
 *
 *   npx tsx bench/scale.ts connections [--devices 10000] [--loaders 4] [--idle-seconds 20]
 *   npx tsx bench/scale.ts rounds      [--devices 1000] [--rounds 3]     (mnist-mlp, ~200k params)
 *   npx tsx bench/scale.ts memory      [--sizes 100,300,1000] [--rounds 2] (wide-mlp, ~1M params)
 *   npx tsx bench/scale.ts ingest      [--devices 300] [--rounds 3] [--cpu-prof DIR] (mnist-mlp, reports only)
 *
 * `ingest` (issue 14 part 9): coordinator CPU seconds per GiB of reports received, validated and
 * folded (no downloads; the CPU also covers round starts and commits), against raw loopback TCP
 * moving the same bytes and against bare ws and socket.io servers receiving the same reports (each
 * answered by an ack) in the same run (bench/scale/transport-floor.ts). `--cpu-prof DIR` profiles
 * the coordinator (node --cpu-prof).
 */
import { createServer, connect } from 'node:net';
import { parseArgs } from 'node:util';
import { admin, startChildServer, type ChildServer } from '../test/helpers/child-server.js';
import { closeLoaders, startLoaders } from './scale/loaders.js';
import { transportFloor } from './scale/transport-floor.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    devices: { type: 'string' },
    loaders: { type: 'string', default: '4' },
    rounds: { type: 'string' },
    sizes: { type: 'string', default: '100,300,1000' },
    'idle-seconds': { type: 'string', default: '20' },
    'cpu-prof': { type: 'string' },
  },
});
const mode = positionals[0] ?? 'connections';
const MiB = 2 ** 20;
const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fleets here are one credential's many devices: lift the per-token device cap (default 10,000). */
const FLEET_ENV = { FLOTILLA_MAX_DEVICES_PER_TOKEN: '10000000' };

async function connections() {
  const N = Number(values.devices ?? 10000);
  const s = await startChildServer({ env: FLEET_ENV });
  try {
    await admin(s, 'POST', '/api/v1/tasks', { id: 'idle', preset: 'tiny-mlp', plan: { clientsPerRound: 100000 } });
    await sleep(1000);
    const rss0 = s.rssBytes();
    const t0 = performance.now();
    const ls = startLoaders(s, 'idle', N, Number(values.loaders), {});
    const results = await Promise.all(ls.map((l) => l.connected));
    const stormS = (performance.now() - t0) / 1000;
    const ok = results.reduce((a, r) => a + r.n, 0);
    await sleep(3000);
    const rss1 = s.rssBytes();
    const idle = Number(values['idle-seconds']);
    const c0 = s.cpuSeconds();
    await sleep(idle * 1000);
    const cpu = (s.cpuSeconds() - c0) / idle;
    const task = await admin(s, 'GET', '/api/v1/tasks/idle');
    console.log(`connections: ${ok}/${N} devices connected and said hello (${results.reduce((a, r) => a + r.failed, 0)} failed), server sees ${task.connectedDevices}`);
    console.log(`connect storm: ${stormS.toFixed(1)} s for ${ok} connects+hellos (${(ok / stormS).toFixed(0)}/s, includes loader process start-up)`);
    console.log(`coordinator RSS: ${(rss0 / MiB).toFixed(0)} MiB idle -> ${(rss1 / MiB).toFixed(0)} MiB with ${ok} devices: ${((rss1 - rss0) / ok / 1024).toFixed(1)} KiB per connection`);
    console.log(`heartbeat load (every device every 5 s = ${(ok / 5).toFixed(0)} msg/s): coordinator CPU ${(cpu * 100).toFixed(1)}% of one core over ${idle} s`);
    await closeLoaders(ls);
  } finally {
    await s.stop();
  }
}

/** Raw loopback TCP: time to push `total` bytes in `chunk`-sized writes through one connection. */
async function rawTcp(total: number, chunk: number): Promise<number> {
  const buf = Buffer.alloc(chunk, 7);
  return new Promise((resolve) => {
    let got = 0;
    let t0 = 0;
    const srv = createServer((sock) => {
      sock.on('data', (d) => {
        got += d.length;
        if (got >= total) {
          const s = (performance.now() - t0) / 1000;
          sock.destroy();
          srv.close();
          resolve(total / s);
        }
      });
    }).listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      const c = connect(port, '127.0.0.1', async () => {
        t0 = performance.now();
        let sent = 0;
        while (sent < total) {
          if (!c.write(buf)) await new Promise((r) => c.once('drain', r));
          sent += chunk;
        }
      });
    });
  });
}

async function runRounds(s: ChildServer, preset: string, n: number, rounds: number, download: boolean, deltaFloats: number) {
  await admin(s, 'POST', '/api/v1/tasks', {
    id: 'scale',
    preset,
    plan: { clientsPerRound: n, overSelect: 1, minAvailable: n, minReports: n, roundDeadlineMs: 600_000, maxRounds: rounds, maxUpdateBytes: 64 * MiB },
  });
  const created = await admin(s, 'GET', '/api/v1/tasks/scale');
  if (created.parameters !== deltaFloats) throw new Error(`${preset} has ${created.parameters} parameters, not ${deltaFloats}`);
  const ls = startLoaders(s, 'scale', n, Number(values.loaders), { respond: true, download, deltaFloats });
  await Promise.all(ls.map((l) => l.connected));
  const rssBefore = s.rssBytes();
  const c0 = s.cpuSeconds();
  await admin(s, 'POST', '/api/v1/tasks/scale/start');
  for (;;) {
    const t = await admin(s, 'GET', '/api/v1/tasks/scale');
    if (t.state === 'done') break;
    await sleep(250);
  }
  const cpu = s.cpuSeconds() - c0;
  const { rounds: recs } = await admin(s, 'GET', '/api/v1/tasks/scale/rounds?limit=100');
  const reports = ls.flatMap((l) => l.reports);
  await closeLoaders(ls);
  return { recs: (recs as any[]).reverse(), reports, cpu, rssBefore, peak: s.peakRssBytes() };
}

async function roundsBench() {
  const N = Number(values.devices ?? 1000);
  const R = Number(values.rounds ?? 3);
  const P = 199_210; // mnist-mlp: 784*200+200 + 200*200+200 + 200*10+10
  const prof = values['cpu-prof'];
  const s = await startChildServer({ env: FLEET_ENV, ...(prof ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${prof}`] } : {}) });
  try {
    const { recs, reports, cpu } = await runRounds(s, 'mnist-mlp', N, R, true, P);
    const bytes = N * (12 + 4 * P);
    console.log(`rounds: ${N} devices selected per round, mnist-mlp (${P} params, ${(bytes / MiB).toFixed(0)} MiB of reports per round)`);
    console.log('round  state  duration s  median device work ms  max device work ms  overhead s  reports  ingest MiB/s');
    const durs: number[] = [];
    const overheads: number[] = [];
    for (const r of recs) {
      const d = ((r.endedAt ?? r.startedAt) - r.startedAt) / 1000;
      const work = reports.filter((x) => x.round === r.round).map((x) => x.workMs);
      durs.push(d);
      const overhead = d - Math.max(...work) / 1000; // round time minus the slowest device's own work (its download)
      overheads.push(overhead);
      console.log(`${String(r.round).padEnd(6)} ${r.state.padEnd(6)} ${d.toFixed(2).padStart(10)}  ${median(work).toFixed(0).padStart(21)}  ${Math.max(...work).toFixed(0).padStart(18)}  ${overhead.toFixed(2).padStart(10)}  ${String(r.reported).padStart(7)}  ${(bytes / MiB / d).toFixed(0).padStart(12)}`);
    }
    const tcp = await rawTcp(bytes, 12 + 4 * P);
    const ingest = bytes / median(durs);
    console.log(`median coordinator overhead per round: ${median(overheads).toFixed(2)} s`);
    console.log(`coordinator CPU: ${(cpu / recs.length).toFixed(2)} s per round (includes serving ${N} weight downloads and making 3 variants)`);
    console.log(`raw loopback TCP of the same bytes: ${(tcp / MiB).toFixed(0)} MiB/s; coordinator round ingest / raw TCP = ${(ingest / tcp).toFixed(3)} (round includes downloads and devices on the same 2 cores)`);
  } finally {
    await s.stop();
  }
}

async function memoryBench() {
  const sizes = values.sizes!.split(',').map(Number);
  const R = Number(values.rounds ?? 2);
  const P = 987_210; // wide-mlp: 784*1000+1000 + 1000*200+200 + 200*10+10
  const model = (4 * P) / MiB;
  console.log(`memory: wide-mlp (${P} params, ${model.toFixed(1)} MiB float32), ${R} rounds per N, no downloads`);
  console.log('N      RSS before MiB  peak RSS MiB  (peak - before) / model size  round s');
  for (const n of sizes) {
    const s = await startChildServer({ env: FLEET_ENV });
    try {
      const { recs, rssBefore, peak } = await runRounds(s, 'wide-mlp', n, R, false, P);
      const d = median(recs.map((r: any) => (r.endedAt - r.startedAt) / 1000));
      console.log(`${String(n).padEnd(6)} ${(rssBefore / MiB).toFixed(0).padStart(14)}  ${(peak / MiB).toFixed(0).padStart(12)}  ${((peak - rssBefore) / MiB / model).toFixed(1).padStart(28)}  ${d.toFixed(1).padStart(7)}`);
    } finally {
      await s.stop();
    }
  }
}

async function ingestBench() {
  const N = Number(values.devices ?? 300);
  const R = Number(values.rounds ?? 3);
  const P = 199_210; // mnist-mlp
  const prof = values['cpu-prof'];
  const s = await startChildServer({ env: FLEET_ENV, ...(prof ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${prof}`] } : {}) });
  try {
    const { recs, cpu } = await runRounds(s, 'mnist-mlp', N, R, false, P);
    const reported = recs.reduce((a: number, r: any) => a + r.reported, 0);
    const bytes = reported * (12 + 4 * P);
    const tcp = await rawTcp(N * (12 + 4 * P), 12 + 4 * P);
    const perCore = bytes / cpu;
    const gib = bytes / 2 ** 30;
    console.log(`ingest: ${reported} reports of mnist-mlp (${P} params) over ${recs.length} rounds, ${(bytes / MiB).toFixed(0)} MiB, coordinator CPU ${cpu.toFixed(2)} s`);
    console.log(`coordinator: ${(cpu / gib).toFixed(2)} CPU s per GiB of reports = ${(perCore / MiB).toFixed(0)} MiB/s per core (target 500)`);
    console.log(`raw loopback TCP, same run: ${(tcp / MiB).toFixed(0)} MiB/s (sender and receiver in one process); ingest per core / raw TCP = ${(perCore / tcp).toFixed(3)}`);
    // The same reports through bare transports (bench/scale/transport-floor.ts), the coordinator's upload slots in flight.
    const slots = Math.max(2, Math.min(64, Math.floor((32 * MiB) / (12 + 4 * P))));
    for (const kind of ['ws', 'socket.io'] as const) {
      const floor = await transportFloor(kind, N, reported, 12 + 4 * P, slots);
      console.log(`transport floor, bare ${kind.padEnd(9)} server, same reports: ${(floor / gib).toFixed(2)} CPU s per GiB = ${(gib * 1024 / floor).toFixed(0)} MiB/s per core; coordinator CPU / this = ${(cpu / floor).toFixed(2)}`);
    }
  } finally {
    await s.stop();
  }
}

const modes: Record<string, () => Promise<void>> = { connections, rounds: roundsBench, memory: memoryBench, ingest: ingestBench };
if (!modes[mode]) {
  console.error('usage: bench/scale.ts connections|rounds|memory|ingest');
  process.exit(2);
}
await modes[mode]();
