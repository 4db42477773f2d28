import { AppError } from '../errors.js';

export type ServeRole = 'all' | 'coordinator' | 'serving';

/**
 * Takes `--role R` (or `--role=R`, else FLOTILLA_ROLE) out of `flotilla serve`'s arguments:
 *  - `all` (default): one process does everything;
 *  - `coordinator`: training, registry and the admin API, without the inference routes;
 *  - `serving`: a serving replica (serving-cli.ts), which never writes the store.
 */
export function takeRole(argv: string[], env: NodeJS.ProcessEnv): { role: ServeRole; argv: string[] } {
  let role: string | undefined = env.FLOTILLA_ROLE || undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--role') role = argv[++i];
    else if (a.startsWith('--role=')) role = a.slice(7);
    else rest.push(a);
  }
  role ??= 'all';
  if (role !== 'all' && role !== 'coordinator' && role !== 'serving') throw new AppError('FL_ERR_CONFIG_INVALID', { option: '--role', value: role, rule: 'all, coordinator or serving' });
  return { role, argv: rest };
}
