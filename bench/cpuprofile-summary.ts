/**
 * Sums a V8 CPU profile (a .cpuprofile from `--cpu-prof`, e.g. `bench/scale.ts ingest --cpu-prof DIR`
 * or `bench/serving.ts --profile FILE`) into shares of its non-idle samples: self time per
 * function, self time per file (packages by name), and inclusive time per function (each function
 * counted once per sample however deep it recurs). `--from F` (0..1) drops the samples of the first
 * fraction F of the profile's time span, e.g. a process's start-up and first, cold runs.
 *
 *   node --import ./scripts/dev-loader.mjs bench/cpuprofile-summary.ts FILE.cpuprofile [--from 0.3] [--top 40]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { positionals, values } = parseArgs({ allowPositionals: true, options: { from: { type: 'string', default: '0' }, top: { type: 'string', default: '40' } } });
if (positionals.length !== 1) throw new Error('usage: bench/cpuprofile-summary.ts FILE.cpuprofile [--from 0.3] [--top 40]');
const p = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const tail = (url: string, parts: number) => url.split('/').slice(-parts).join('/');
const fnKey = (f: ProfileNode['callFrame']) => `${f.functionName || '(anonymous)'} ${tail(f.url, 2)}:${f.lineNumber}`;
/** A package's name for files under node_modules, else the file's last two path parts (or the pseudo-function, e.g. "(garbage collector)"). */
function fileKey(f: ProfileNode['callFrame']): string {
  const at = f.url.lastIndexOf('node_modules/');
  if (at >= 0) {
    const [a, b] = f.url.slice(at + 'node_modules/'.length).split('/');
    return a.startsWith('@') ? `${a}/${b}` : a;
  }
  return tail(f.url, 2) || f.functionName;
}

const from = p.startTime + (p.endTime - p.startTime) * Number(values.from);
const self = new Map<string, number>();
const files = new Map<string, number>();
const inclusive = new Map<string, number>();
const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
let t = p.startTime;
let total = 0;
p.samples.forEach((id, i) => {
  t += p.timeDeltas[i];
  const frame = byId.get(id)!.callFrame;
  if (t < from || frame.functionName === '(idle)') return;
  total++;
  add(self, fnKey(frame));
  add(files, fileKey(frame));
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) seen.add(fnKey(byId.get(cur)!.callFrame));
  for (const k of seen) add(inclusive, k);
});

const show = (m: Map<string, number>, title: string) => {
  console.log(`\n${title} (share of ${total} non-idle samples)`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`);
};
show(self, 'self time per function');
show(files, 'self time per file or package');
show(inclusive, 'inclusive time per function');
