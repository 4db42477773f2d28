/**
 * Scale benchmark (issue 7). One coordinator in a child process; devices in separate loader
 * processes on loopback.
 *
 *   npx tsx bench/scale.ts connections [--devices 10000] [--loaders 4] [--idle-seconds 20]
 *   npx tsx bench/scale.ts rounds      [--devices 1000] [--rounds 3]     (mnist-mlp, ~200k params)
 *   npx tsx bench/scale.ts memory      [--sizes 100,300,1000] [--rounds 2] (wide-mlp, ~1M params)
 *   npx tsx bench/scale.ts ingest      [--devices 300] [--rounds 3] [--repeat 3] [--paths direct,upload,socket] [--floors net,http,ws,socket.io] [--cpu-prof DIR] [--preset mnist-mlp] (reports only)
 *
 * `ingest` (issue 14 part 9): coordinator CPU seconds per GiB of reports received, validated and
 * folded (no downloads; the CPU also covers round starts and commits), for (a) the HTTP upload
 * channel (`fit:upload` + PUT) read by the dedicated receiver (`direct`: http/upload-connection.ts),
 * (a') the same PUTs read by the fastify route (`upload`) and (b) the socket path (`fit:ready` +
 * `fit:report`), alternating which goes first, `--repeat` times each, on two coordinator processes
 * (one per receiver; the socket path on the fastify one); against raw loopback TCP moving the
 * same bytes and against bare net (HTTP parsed by hand), http, ws and socket.io servers receiving
 * the same reports (each answered by an ack) in the same run (bench/scale/transport-floor.ts).
 * Prints every run (with the coordinator's garbage-collection seconds, from its /metrics), the
 * medians, their ratios and the load average. `--cpu-prof DIR` profiles the coordinator. Also CPU
 * ms per report: with `--preset tiny-mlp` (reports of a few hundred bytes) that is the cost of a
 * report apart from its bytes (offer, request, token, slot, validation, answer, round bookkeeping).
 */
import { loadavg } from 'node:os';
import { createServer, connect } from 'node:net';
import { parseArgs } from 'node:util';
import { admin, startChildServer, type ChildServer } from '../test/helpers/child-server.js';
import { closeLoaders, startLoaders } from './scale/loaders.js';
import { transportFloor } from './scale/transport-floor.js';
import { median } from './stats.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    devices: { type: 'string' },
    loaders: { type: 'string', default: '4' },
    rounds: { type: 'string' },
    sizes: { type: 'string', default: '100,300,1000' },
    'idle-seconds': { type: 'string', default: '20' },
    'cpu-prof': { type: 'string' },
    repeat: { type: 'string', default: '3' },
    preset: { type: 'string', default: 'mnist-mlp' },
    paths: { type: 'string', default: 'direct,upload,socket' },
    floors: { type: 'string', default: 'net,http,ws,socket.io' },
  },
});
const mode = positionals[0] ?? 'connections';
const MiB = 2 ** 20;
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

/** Seconds the coordinator has spent in garbage collection so far (prom-client's nodejs_gc_duration_seconds, all kinds). */
async function gcSeconds(s: ChildServer): Promise<number> {
  const res = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.adminToken}` } });
  const text = await res.text();
  return [...text.matchAll(/^nodejs_gc_duration_seconds_sum\{[^}]*\} ([0-9.e+-]+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

async function runRounds(s: ChildServer, preset: string, n: number, rounds: number, download: boolean, deltaFloats: number, id = 'scale', upload = false) {
  await admin(s, 'POST', '/api/v1/tasks', {
    id,
    preset,
    plan: { clientsPerRound: n, overSelect: 1, minAvailable: n, minReports: n, roundDeadlineMs: 600_000, maxRounds: rounds, maxUpdateBytes: 64 * MiB },
  });
  const created = await admin(s, 'GET', `/api/v1/tasks/${id}`);
  // deltaFloats 0: whatever the preset has (the ingest bench's --preset).
  if (deltaFloats === 0) deltaFloats = created.parameters;
  if (created.parameters !== deltaFloats) throw new Error(`${preset} has ${created.parameters} parameters, not ${deltaFloats}`);
  const ls = startLoaders(s, id, n, Number(values.loaders), { respond: true, download, deltaFloats, upload });
  await Promise.all(ls.map((l) => l.connected));
  const rssBefore = s.rssBytes();
  const c0 = s.cpuSeconds();
  const gc0 = await gcSeconds(s);
  await admin(s, 'POST', `/api/v1/tasks/${id}/start`);
  for (;;) {
    const t = await admin(s, 'GET', `/api/v1/tasks/${id}`);
    if (t.state === 'done') break;
    await sleep(250);
  }
  const cpu = s.cpuSeconds() - c0;
  const gc = (await gcSeconds(s)) - gc0;
  const { rounds: recs } = await admin(s, 'GET', `/api/v1/tasks/${id}/rounds?limit=100`);
  const reports = ls.flatMap((l) => l.reports);
  await closeLoaders(ls);
  return { recs: (recs as any[]).reverse(), reports, cpu, gc, rssBefore, peak: s.peakRssBytes(), parameters: deltaFloats };
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
  const K = Number(values.repeat);
  const preset = values.preset!;
  // mnist-mlp unless --preset: a small model (tiny-mlp) shows the cost of a report apart from its bytes.
  // Its parameter count (and so the report size) is the created task's, known after the first run.
  let P = 0;
  let size = 0;
  const prof = values['cpu-prof'];
  const load0 = loadavg();
  const nodeArgs = prof ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${prof}`] } : {};
  // One coordinator per receiver, both up for the whole run; the paths alternate between them.
  const direct = await startChildServer({ env: { ...FLEET_ENV, FLOTILLA_REPORT_RECEIVER: 'direct' }, ...nodeArgs });
  const route = await startChildServer({ env: { ...FLEET_ENV, FLOTILLA_REPORT_RECEIVER: 'fastify' }, ...nodeArgs });
  const serverFor = (path: string) => (path === 'direct' ? direct : route);
  const GiB = 2 ** 30;
  const perGiB: Record<string, number[]> = { direct: [], upload: [], socket: [] };
  const msPerReport: Record<string, number[]> = { direct: [], upload: [], socket: [] };
  let reportsPerRun = 0;
  try {
    console.log(`ingest: ${preset}, ${N} devices x ${R} rounds per run, ${K} runs per path; load average ${load0.map((x) => x.toFixed(1)).join(' ')}`);
    console.log('run  path    reports  refused  MiB     coordinator CPU s  CPU s/GiB  MiB/s per core  CPU ms per report  GC s (share of CPU)');
    for (let k = 0; k < K; k++) {
      const paths = values.paths!.split(',') as Array<'direct' | 'upload' | 'socket'>;
      for (const path of k % 2 === 0 ? paths : [...paths].reverse()) {
        const { recs, reports, cpu, gc, parameters } = await runRounds(serverFor(path), preset, N, R, false, P, `ingest-${path}-${k}`, path !== 'socket');
        if (!P) {
          P = parameters;
          size = 12 + 4 * P;
          console.log(`(${preset}: ${P} params, ${(size / MiB).toFixed(3)} MiB per f32 report)`);
        }
        const reported = recs.reduce((a: number, r: any) => a + r.reported, 0);
        const refused = reports.filter((r) => !r.ok).length;
        const gib = (reported * size) / GiB;
        reportsPerRun = reported;
        perGiB[path].push(cpu / gib);
        msPerReport[path].push((1000 * cpu) / reported);
        console.log(`${String(k + 1).padEnd(4)} ${path.padEnd(7)} ${String(reported).padStart(7)}  ${String(refused).padStart(7)}  ${((reported * size) / MiB).toFixed(0).padStart(4)}  ${cpu.toFixed(2).padStart(17)}  ${(cpu / gib).toFixed(2).padStart(9)}  ${(1024 / (cpu / gib)).toFixed(0).padStart(14)}  ${((1000 * cpu) / reported).toFixed(2).padStart(17)}  ${gc.toFixed(2).padStart(4)} (${((100 * gc) / cpu).toFixed(0)} %)`);
      }
    }
  } finally {
    await direct.stop();
    await route.stop();
  }
  // The same reports through bare transports (bench/scale/transport-floor.ts), the coordinator's upload slots in flight.
  const slots = Math.max(2, Math.min(64, Math.floor((32 * MiB) / size)));
  const floors: Record<string, number[]> = { http: [], ws: [], 'socket.io': [], net: [] };
  for (let k = 0; k < K; k++) {
    for (const kind of values.floors!.split(',').filter(Boolean) as Array<'http' | 'ws' | 'socket.io' | 'net'>) floors[kind].push((await transportFloor(kind, N, reportsPerRun, size, slots)) / ((reportsPerRun * size) / GiB));
  }
  const tcp = await rawTcp(N * size, size);
  const load1 = loadavg();
  const rows: Array<[string, number]> = [
    ['(a) coordinator, upload channel, direct receiver', median(perGiB.direct)],
    ["(a') coordinator, upload channel, fastify route", median(perGiB.upload)],
    ['(b) coordinator, socket path (fit:report)', median(perGiB.socket)],
    ['(c) bare ws server', median(floors.ws)],
    ['(d) bare socket.io server', median(floors['socket.io'])],
    ['(e) bare Node http server (PUT), floor of (a)', median(floors.http)],
    ['(f) bare net server parsing the PUTs by hand', median(floors.net)],
  ];
  console.log(`\nmedians of ${K} runs (${reportsPerRun} reports, ${((reportsPerRun * size) / MiB).toFixed(0)} MiB each):`);
  console.log('what                                            CPU s/GiB  MiB/s per core  runs (CPU s/GiB)');
  const runs = [perGiB.direct, perGiB.upload, perGiB.socket, floors.ws, floors['socket.io'], floors.http, floors.net];
  // Rows of paths or floors left out by --paths / --floors are not printed (their ratios below read NaN).
  rows.forEach(([what, v], i) => runs[i].length > 0 && console.log(`${what.padEnd(47)} ${v.toFixed(2).padStart(9)}  ${(1024 / v).toFixed(0).padStart(14)}  ${runs[i].map((x) => x.toFixed(2)).join(' / ')}`));
  console.log(`coordinator CPU ms per report, medians: direct ${median(msPerReport.direct).toFixed(3)}, route ${median(msPerReport.upload).toFixed(3)}, socket path ${median(msPerReport.socket).toFixed(3)}`);
  const [a2, a, b, c, d, e, f] = rows.map((r) => r[1]);
  console.log(`direct receiver / fastify route (CPU per GiB, new / old) = ${(a2 / a).toFixed(2)} (${(a / a2).toFixed(2)}x the throughput per core); direct / bare net = ${(a2 / f).toFixed(2)}; direct / bare http = ${(a2 / e).toFixed(2)}`);
  console.log(`target 500 MiB/s per core = ${(1024 / 500).toFixed(2)} CPU s/GiB: direct receiver ${1024 / a2 >= 500 ? 'meets' : 'misses'} it (${(1024 / a2).toFixed(0)} MiB/s per core)`);
  console.log(`ratios (CPU per GiB): upload / socket path = ${(a / b).toFixed(2)} (socket path / upload = ${(b / a).toFixed(2)}x); upload / bare http = ${(a / e).toFixed(2)}; upload / bare net = ${(a / f).toFixed(2)}; socket path / bare socket.io = ${(b / d).toFixed(2)}; bare ws / bare http = ${(c / e).toFixed(2)}; bare net / bare http = ${(f / e).toFixed(2)}`);
  console.log(`target 500 MiB/s per core: bare net server ${1024 / f >= 500 ? 'reaches' : 'does not reach'} it (${(1024 / f).toFixed(0)} MiB/s per core), bare Node http ${1024 / e >= 500 ? 'reaches' : 'does not reach'} it (${(1024 / e).toFixed(0)})`);
  console.log(`target 500 MiB/s per core = ${(1024 / 500).toFixed(2)} CPU s/GiB: fastify route ${1024 / a >= 500 ? 'meets' : 'misses'} it (${(1024 / a).toFixed(0)} MiB/s per core)`);
  console.log(`raw loopback TCP, same run: ${(tcp / MiB).toFixed(0)} MiB/s (sender and receiver in one process)`);
  console.log(`load average at the start ${load0.map((x) => x.toFixed(1)).join(' ')}, at the end ${load1.map((x) => x.toFixed(1)).join(' ')}`);
}

const modes: Record<string, () => Promise<void>> = { connections, rounds: roundsBench, memory: memoryBench, ingest: ingestBench };
if (!modes[mode]) {
  console.error('usage: bench/scale.ts connections|rounds|memory|ingest');
  process.exit(2);
}
await modes[mode]();
