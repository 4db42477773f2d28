/** Entry of the `flotilla-sim` command (bin/flotilla-sim.mjs imports the compiled dist/bin.js). */
import { main } from './cli.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`flotilla-sim: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
