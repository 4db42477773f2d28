import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseAttack } from './attack.js';
import { PARTITIONS } from './partition.js';
import { LossNameSchema } from '@flotilla/protocol';

/**
 * flotilla-sim's flags, parsed from argv and validated once with zod. `parseCliOptions` either
 * returns a fully resolved SimOptions or throws CliUsageError (the CLI prints it and exits 2).
 */
export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

export const USAGE = `Usage: flotilla-sim [flags]

Runs FedAvg on MNIST with many virtual devices: real Flotilla SDK clients on real socket.io
connections, spread over worker threads. Without --url a coordinator starts in-process.

Coordinator
  --url URL                 attach to a running coordinator (http://host:port)
  --token T                 device token (with --url)
  --admin-token T           admin token for the REST API (with --url; default: --token)
  --task ID                 task id (default: mnist-sim); with --url, created when missing
  --wait-timeout S          with --url: how long to wait for an unreachable coordinator, retrying
                            with backoff (progress on stderr), before giving up (default 300)
Federation
  --clients N               virtual devices (default 100)
  --clients-per-round K     reports aggregated per round (default 10)
  --rounds R                round cap, failed attempts included (default 200)
  --target-accuracy X       stop when central test accuracy reaches X, in (0,1] (default 0.97)
  --deadline-ms MS          round deadline (default 60000)
  --eval-clients K          devices asked for federated evaluation per round (default: clients-per-round)
Model and data
  --model mlp|cnn           784-200-200-10 MLP ("2NN") or the McMahan et al. CNN (default mlp)
  --model-dir DIR           your own TensorFlow.js LayersModel (model.json + weight shards, as
                            model.save('file://DIR') writes it) instead of --model; in-process only
  --data FILE               your own data instead of MNIST: a .csv (last --label-columns columns are
                            labels, optional header) or an IDX pair images.idx:labels.idx
  --label-columns N         label columns of a CSV (default 1; several: multi-label or multi-output)
  --test-fraction F         last fraction of --data rows kept for central evaluation (default 0.2)
  --loss NAME               the plan's loss (default: categoricalCrossentropy for class ids,
                            meanSquaredError for real-valued labels)
  --trainable-layers A,B    only these layers train (and only their weights travel)
  --partition iid|shards|dirichlet   (default iid)
  --alpha A                 Dirichlet concentration (default 0.5)
  --examples-per-client N   rows per device (iid, shards; default: all rows split evenly)
  --epochs E                local epochs (default 1)
  --batch-size B            local batch size (default 10)
  --lr LR                   client SGD learning rate (default 0.1)
  --seed S                  seed for partitions, selection and faults (default 1)
  --train-limit N           use only the first N training rows (quick runs)
  --test-limit N            use only the first N test rows for central evaluation
Faults
  --dropout P               a selected device vanishes mid-round with probability P, back later
  --straggler P:MS          a selected device waits MS ms before reporting with probability P
  --attack scale:F:P|noise:STD:P   a fixed fraction P of the devices poisons every update it sends:
                            scaled by F (e.g. scale:-10:0.1) or replaced by N(0, STD^2) noise
Execution and output
  --workers W               worker threads (default: available parallelism, at most --clients)
  --out DIR                 results folder (default ./runs/<timestamp>/)
  --demo                    the README demo: 100 devices, IID, 600 each, 10 per round, E=1, B=10,
                            MLP, until 97% test accuracy or 200 rounds
  --quiet                   no progress output
  -h, --help                this help
`;

const int = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number({ error: `--${name} must be a number` }).int(`--${name} must be an integer`).min(min, `--${name} must be at least ${min}`).max(max, `--${name} must be at most ${max}`);

const probability = (name: string) =>
  z.coerce.number({ error: `--${name} must be a number` }).min(0, `--${name} must be in [0, 1)`).lt(1, `--${name} must be in [0, 1)`);

const StragglerSchema = z
  .string()
  .regex(/^(0(\.\d+)?|1(\.0+)?|\.\d+):\d+$/, '--straggler must look like P:MS, e.g. 0.2:3000')
  .transform((s) => {
    const [p, ms] = s.split(':');
    return { probability: Number(p), delayMs: Number(ms) };
  });

export const SimOptionsSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: '--url must be an http(s) URL' }).optional(),
    token: z.string().min(1).optional(),
    adminToken: z.string().min(1).optional(),
    task: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, '--task: letters, digits, . _ : - only').default('mnist-sim'),
    waitTimeout: int('wait-timeout', 0, 86_400).default(300),
    clients: int('clients', 1, 100_000).default(100),
    clientsPerRound: int('clients-per-round', 1, 100_000).default(10),
    rounds: int('rounds', 1, 1_000_000).default(200),
    targetAccuracy: z.coerce.number({ error: '--target-accuracy must be a number' }).gt(0, '--target-accuracy must be in (0, 1]').lte(1, '--target-accuracy must be in (0, 1]').default(0.97),
    deadlineMs: int('deadline-ms', 100, 86_400_000).default(60_000),
    evalClients: int('eval-clients', 0, 100_000).optional(),
    model: z.enum(['mlp', 'cnn'], { error: '--model must be mlp or cnn' }).default('mlp'),
    modelDir: z.string().min(1).optional(),
    data: z.string().min(1).optional(),
    labelColumns: int('label-columns', 1, 10_000).default(1),
    testFraction: z.coerce.number({ error: '--test-fraction must be a number' }).gt(0, '--test-fraction must be in (0, 1)').lt(1, '--test-fraction must be in (0, 1)').default(0.2),
    loss: LossNameSchema.optional(),
    trainableLayers: z.string().min(1).transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)).optional(),
    partition: z.enum(PARTITIONS, { error: `--partition must be one of ${PARTITIONS.join(', ')}` }).default('iid'),
    alpha: z.coerce.number({ error: '--alpha must be a number' }).positive('--alpha must be > 0').default(0.5),
    examplesPerClient: int('examples-per-client', 1).optional(),
    epochs: int('epochs', 1, 1000).default(1),
    batchSize: int('batch-size', 1, 65536).default(10),
    lr: z.coerce.number({ error: '--lr must be a number' }).positive('--lr must be > 0').max(100, '--lr must be at most 100').default(0.1),
    seed: int('seed', 0, 2 ** 31 - 1).default(1),
    trainLimit: int('train-limit', 1, 60000).optional(),
    testLimit: int('test-limit', 1, 10000).optional(),
    dropout: probability('dropout').default(0),
    straggler: StragglerSchema.optional(),
    attack: z
      .string()
      .transform((s, ctx) => {
        try {
          return parseAttack(s);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
          return z.NEVER;
        }
      })
      .optional(),
    workers: int('workers', 1, 1024).optional(),
    out: z.string().min(1).optional(),
    demo: z.boolean().default(false),
    quiet: z.boolean().default(false),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.url && !o.token) ctx.addIssue({ code: 'custom', message: '--url needs --token (the device token of that coordinator)' });
    if (!o.url && (o.token || o.adminToken)) ctx.addIssue({ code: 'custom', message: '--token and --admin-token only make sense with --url' });
    if (o.clientsPerRound > o.clients) ctx.addIssue({ code: 'custom', message: `--clients-per-round (${o.clientsPerRound}) must not exceed --clients (${o.clients})` });
    const rows = o.trainLimit ?? 60000;
    if (!o.data && o.partition !== 'dirichlet' && o.examplesPerClient !== undefined && o.examplesPerClient * o.clients > rows) {
      ctx.addIssue({ code: 'custom', message: `--clients ${o.clients} x --examples-per-client ${o.examplesPerClient} needs more than the ${rows} training rows` });
    }
    if (o.modelDir && o.url) ctx.addIssue({ code: 'custom', message: '--model-dir runs in-process only; for a running coordinator upload with: flotilla tasks create ID --model DIR' });
    if (o.data && !o.modelDir) ctx.addIssue({ code: 'custom', message: '--data needs --model-dir (a model that takes your data)' });
    if (!o.data && o.clients > rows) ctx.addIssue({ code: 'custom', message: `--clients (${o.clients}) exceeds the ${rows} training rows` });
  });

export type SimOptions = z.infer<typeof SimOptionsSchema>;

/** The README demo (McMahan et al. 2017's 2NN IID setting), applied before explicit flags. */
export const DEMO_DEFAULTS = {
  clients: 100,
  clientsPerRound: 10,
  rounds: 200,
  targetAccuracy: 0.97,
  model: 'mlp',
  partition: 'iid',
  examplesPerClient: 600,
  epochs: 1,
  batchSize: 10,
} as const;

const FLAGS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'admin-token': { type: 'string' },
  task: { type: 'string' },
  'wait-timeout': { type: 'string' },
  clients: { type: 'string' },
  'clients-per-round': { type: 'string' },
  rounds: { type: 'string' },
  'target-accuracy': { type: 'string' },
  'deadline-ms': { type: 'string' },
  'eval-clients': { type: 'string' },
  model: { type: 'string' },
  'model-dir': { type: 'string' },
  data: { type: 'string' },
  'label-columns': { type: 'string' },
  'test-fraction': { type: 'string' },
  loss: { type: 'string' },
  'trainable-layers': { type: 'string' },
  partition: { type: 'string' },
  alpha: { type: 'string' },
  'examples-per-client': { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  seed: { type: 'string' },
  'train-limit': { type: 'string' },
  'test-limit': { type: 'string' },
  dropout: { type: 'string' },
  straggler: { type: 'string' },
  attack: { type: 'string' },
  workers: { type: 'string' },
  out: { type: 'string' },
  demo: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Parse argv (without node and script). Returns 'help' for -h/--help. */
export function parseCliOptions(argv: string[]): SimOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new CliUsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  if (values.help) return 'help';
  const raw: Record<string, unknown> = values.demo ? { ...DEMO_DEFAULTS } : {};
  for (const [k, v] of Object.entries(values)) if (k !== 'help' && v !== undefined) raw[camel(k)] = v;
  const r = SimOptionsSchema.safeParse(raw);
  if (!r.success) throw new CliUsageError(r.error.issues.map((i) => i.message).join('\n'));
  return r.data;
}
