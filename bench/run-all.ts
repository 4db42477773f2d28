/**
 * `npm run bench`: runs the benchmarks one after another (never two at once: they share the CPU)
 * with quick settings, each printing its own figures and ratio against its in-run baseline.
 * `npm run bench -- --full` uses the full sizes (10,000 devices, McMahan's rounds to 97%,
 * the experiments): hours on a 2-core machine. `--only a,b` runs a subset.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { full: { type: 'boolean', default: false }, only: { type: 'string' } } });

const quick: Record<string, string[]> = {
  aggregation: ['bench/aggregation.ts', '--n', '10,100,1000'],
  compression: ['bench/compression.ts'],
  registry: ['bench/registry.ts'],
  serving: ['bench/serving.ts'],
  simulation: ['bench/simulation.ts', '--rounds', '5'],
  'scale-connections': ['bench/scale.ts', 'connections', '--devices', '2000', '--idle-seconds', '10'],
  'scale-rounds': ['bench/scale.ts', 'rounds', '--devices', '300', '--rounds', '2'],
  'scale-memory': ['bench/scale.ts', 'memory', '--sizes', '50,200', '--rounds', '1'],
  console: ['bench/console.ts', '--devices', '200', '--rounds', '3', '--trials', '3'],
  startup: ['bench/startup.ts', '--runs', '5'],
  deploy: ['bench/deploy.ts', '--runs', '3'],
  'bundle-size': ['bench/bundle-size.ts'],
  'browser-training': ['bench/browser-training.ts', '--rounds', '3'],
};
const full: Record<string, string[]> = {
  ...quick,
  simulation: ['bench/simulation.ts'],
  'scale-connections': ['bench/scale.ts', 'connections', '--devices', '10000'],
  'scale-rounds': ['bench/scale.ts', 'rounds', '--devices', '1000', '--rounds', '3'],
  'scale-memory': ['bench/scale.ts', 'memory', '--sizes', '100,300,1000'],
  console: ['bench/console.ts', '--devices', '1000', '--rounds', '5'],
  startup: ['bench/startup.ts', '--runs', '9'],
  'browser-training': ['bench/browser-training.ts', '--rounds', '6'],
  'fedavg-mnist': ['bench/fedavg-mnist.ts'],
  // Written under .bench-out/, not over the measured results in docs/experiments/.
  'exp-noniid': ['bench/exp-noniid.ts', '--rounds', '700', '--out', '.bench-out/exp-noniid'],
  'exp-poisoning': ['bench/exp-poisoning.ts', '--out', '.bench-out/exp-poisoning'],
  'exp-compression': ['bench/exp-compression.ts', '--out', '.bench-out/exp-compression'],
  'exp-privacy': ['bench/exp-privacy.ts', '--out', '.bench-out/exp-privacy'],
  // Issue 16 at the size it asks for (full MNIST, 100 devices, IID and Dirichlet 0.3, 95% and 97%); docs/experiments/async.md ran a reduced one.
  'exp-async': ['bench/exp-async.ts', '--seeds', '1', '--clients', '100', '--train-limit', '60000', '--test-limit', '10000', '--partitions', 'iid,dirichlet', '--thresholds', '0.95,0.97', '--device-time-ms', '3000', '--rounds', '300', '--steps', '1500', '--concurrency', '10', '--buffer-size', '5', '--max-seconds', '1500', '--name', 'async-full', '--out', '.bench-out/exp-async'],
};

const table = values.full ? full : quick;
const names = values.only ? values.only.split(',') : Object.keys(table);
let failed = 0;
for (const name of names) {
  const args = table[name];
  if (!args) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(table).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n=== ${name}: npx tsx ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', new URL('../scripts/dev-loader.mjs', import.meta.url).href, ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`=== ${name} failed (exit ${r.status})`);
  }
}
process.exit(failed ? 1 : 0);
