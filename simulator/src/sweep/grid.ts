import { z } from 'zod';
import { CliUsageError, SIM_FLAGS, parseCliOptions } from '../cli-options.js';

/**
 * A sweep grid (docs: simulator/README.md, "Sweeps"): a JSON object
 *   { "base": { <flag>: value, ... }, "grid": [ { <flag>: value | [values], ... }, ... ] }
 * or just the array of grid entries. Keys are flotilla-sim flag names without the dashes
 * ("lr", "strategy", "clients-per-round", ...). In a grid entry an array value means "each of
 * these" and entries expand to the Cartesian product of their arrays; "strategy-params" is an
 * object whose array values expand the same way. Flags the sweep sets itself (seed, out, quiet,
 * target-accuracy, url...) are refused. Every expanded configuration is validated as a full
 * flotilla-sim command line before any run starts, so a bad value is reported with its config.
 */
export interface SweepConfig {
  /** Human label: the entry's varying settings, e.g. "scaffold lr=0.1 serverLearningRate=1". */
  label: string;
  /** The strategy the run uses (for charts grouping by strategy). */
  strategy: string;
  /** flotilla-sim flags of this configuration (base flags not included). */
  args: string[];
  /** The settings as given, for the JSON output. */
  settings: Record<string, unknown>;
}

const RESERVED = new Set(['seed', 'out', 'quiet', 'target-accuracy', 'url', 'token', 'admin-token', 'demo', 'help', 'wait-timeout']);
const Scalar = z.union([z.string(), z.number(), z.boolean()]);
const Entry = z.record(z.string(), z.union([Scalar, z.array(Scalar).min(1), z.record(z.string(), z.unknown())]));
const GridFile = z.union([
  z.object({ base: z.record(z.string(), Scalar).default({}), grid: z.array(Entry).min(1) }).strict(),
  z.array(Entry).min(1).transform((grid) => ({ base: {}, grid })),
]);

function checkKey(key: string, where: string): void {
  if (RESERVED.has(key)) throw new CliUsageError(`${where}: "${key}" is set by the sweep itself and cannot be in the grid`);
  if (!(key in SIM_FLAGS)) throw new CliUsageError(`${where}: unknown flag "${key}" (use flotilla-sim flag names without dashes, e.g. "lr", "clients-per-round")`);
}

function flagArgs(key: string, v: unknown): string[] {
  if (SIM_FLAGS[key as keyof typeof SIM_FLAGS].type === 'boolean') return v === true ? [`--${key}`] : [];
  // --flag=value, so that values starting with a dash (-1) are not read as flags.
  return [`--${key}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`];
}

/** Cartesian product of the arrays in `o` (non-arrays are fixed). */
function product(o: Record<string, unknown>): Array<Record<string, unknown>> {
  let out: Array<Record<string, unknown>> = [{}];
  for (const [k, v] of Object.entries(o)) {
    const values = Array.isArray(v) ? v : [v];
    out = out.flatMap((partial) => values.map((x) => ({ ...partial, [k]: x })));
  }
  return out;
}

const short = (v: unknown) => (typeof v === 'object' ? JSON.stringify(v) : String(v));

export function parseGrid(text: string): { base: string[]; configs: SweepConfig[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CliUsageError(`--grid is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = GridFile.safeParse(raw);
  if (!parsed.success) throw new CliUsageError(`--grid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  const base: string[] = [];
  for (const [k, v] of Object.entries(parsed.data.base)) {
    checkKey(k, 'grid base');
    base.push(...flagArgs(k, v));
  }
  const configs: SweepConfig[] = [];
  parsed.data.grid.forEach((entry, n) => {
    const where = `grid entry ${n + 1}`;
    for (const k of Object.keys(entry)) checkKey(k, where);
    const { 'strategy-params': params, ...flags } = entry;
    if (params !== undefined && (typeof params !== 'object' || Array.isArray(params) || params === null)) throw new CliUsageError(`${where}: "strategy-params" must be an object`);
    for (const f of product(flags)) {
      for (const p of params ? product(params as Record<string, unknown>) : [undefined]) {
        const settings: Record<string, unknown> = { ...f, ...(p ? { 'strategy-params': p } : {}) };
        const args = Object.entries(settings).flatMap(([k, v]) => flagArgs(k, v));
        const strategy = String(f.strategy ?? 'fedavg');
        const parts = [strategy];
        for (const [k, v] of Object.entries(f)) if (k !== 'strategy') parts.push(`${k}=${short(v)}`);
        for (const [k, v] of Object.entries(p ?? {})) parts.push(`${k}=${short(v)}`);
        configs.push({ label: parts.join(' '), strategy, args, settings });
      }
    }
  });
  const seen = new Set<string>();
  for (const c of configs) {
    if (seen.has(c.label)) throw new CliUsageError(`the grid repeats the configuration "${c.label}"`);
    seen.add(c.label);
  }
  return { base, configs };
}

/** Throws CliUsageError naming the configuration whose full command line flotilla-sim would refuse. */
export function validateConfigs(base: string[], configs: readonly SweepConfig[]): void {
  for (const c of configs) {
    try {
      parseCliOptions([...base, ...c.args, '--quiet']);
    } catch (err) {
      if (err instanceof CliUsageError) throw new CliUsageError(`configuration "${c.label}": ${err.message}`);
      throw err;
    }
  }
}
