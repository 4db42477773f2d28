import { CliUsageError, parseCliOptions, USAGE } from './cli-options.js';
import { formatPct } from './progress.js';
import { runSimulation } from './simulation.js';

/**
 * flotilla-sim entry. Exit codes: 0 success (target reached or round cap), 2 bad flags,
 * 1 the run failed (coordinator unreachable, devices could not connect, no round committed).
 */
export async function main(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = parseCliOptions(argv);
  } catch (err) {
    if (err instanceof CliUsageError) {
      process.stderr.write(`flotilla-sim: ${err.message}\n\nRun flotilla-sim --help for the flags.\n`);
      return 2;
    }
    throw err;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const say = (s: string) => {
    if (!opts.quiet) process.stdout.write(s + '\n');
  };
  say(
    `flotilla-sim: ${opts.clients} devices (${opts.partition}${opts.partition === 'dirichlet' ? `, alpha ${opts.alpha}` : ''}), ` +
      `${opts.clientsPerRound} per round, E=${opts.epochs} B=${opts.batchSize} lr=${opts.lr}, ${opts.model.toUpperCase()}, ` +
      `until ${formatPct(opts.targetAccuracy, 1)} or ${opts.rounds} rounds; coordinator: ${opts.url ?? 'in-process'}`,
  );
  if (opts.model === 'cnn') {
    say(
      'note: without @tensorflow/tfjs-node the CNN trains and evaluates on the pure-JS cpu backend (the wasm backend lacks ' +
        'Conv2DBackpropFilter): many seconds per device-epoch. Use small --train-limit/--test-limit and a long --deadline-ms.',
    );
  }
  // First Ctrl-C stops the task and still writes the results of the rounds so far; a second one exits.
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('\nflotilla-sim: stopping (Ctrl-C again to quit at once)\n');
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  const r = await runSimulation(opts, { signal: abort.signal }).finally(() => process.off('SIGINT', onSigint));
  const s = r.results.summary!;
  say(
    `\n${s.stopReason}. ${s.roundsCommitted} rounds committed, ${s.roundsFailed} failed; ` +
      `final test accuracy ${formatPct(s.finalAccuracy)}, best ${formatPct(s.bestAccuracy)}` +
      (s.reachedTargetAt !== null ? `; target reached at round ${s.reachedTargetAt}` : '; target not reached') +
      `. Wall time ${(s.wallMs / 1000).toFixed(1)} s on ${r.workers} worker thread(s), tfjs backend ${r.backend}.`,
  );
  if (r.pool.dropouts || r.pool.stragglers) say(`Faults: ${r.pool.dropouts} dropouts (${r.pool.rejoins} rejoined), ${r.pool.stragglers} stragglers.`);
  if (r.files) say(`Results: ${r.files.json}, ${r.files.csv}, ${r.files.svg}`);
  if (s.roundsCommitted === 0 && s.stopReason !== 'interrupted') {
    process.stderr.write('flotilla-sim: no round committed; see the device errors above\n');
    return 1;
  }
  return 0;
}
