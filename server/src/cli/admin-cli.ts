import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ApiClient, ApiError, UsageError, asApiError } from './api-client.js';
import { distill } from './distill.js';
import { progressBar } from './progress-bar.js';
import { checkModelDir, uploadModelDir, uploadOnnxFile } from './model-upload.js';
import { table, time } from './table.js';

export const ADMIN_COMMANDS = ['tasks', 'rounds', 'models', 'alias', 'clients', 'token', 'tokens'] as const;

export const ADMIN_USAGE = `operator commands (call the admin API of a running server):
  flotilla tasks list
  flotilla tasks create <id> (--preset NAME | --model DIR | --from-version MODEL@VERSION|ALIAS | --spec FILE --weights FILE)
                        [--plan JSON|@FILE] [--model-name M] [--start]
  flotilla models import <model> DIR|FILE.onnx
  flotilla models lineage <model> <version|alias>
  flotilla models distill <model>@<version|alias> --student PRESET|mlp:H1,H2,... --data FILE.csv|central:mnist|central:mnist-train
          [--temperature T] [--epochs N] [--batch-size B] [--alpha A] [--holdout F] [--learning-rate R] [--rows N]
  flotilla tasks start|pause|resume|stop <id>
  flotilla rounds list <task> [--limit N] [--offset N]
  flotilla models list
  flotilla models versions <model> [--limit N] [--offset N]
  flotilla alias set <model> <alias> <version>
  flotilla clients list [--task T] [--state connected|disconnected|revoked]
  flotilla clients revoke <id>
  flotilla token create --role admin|viewer|device|inference|serving [--task T] [--endpoints A,B] [--name N] [--ttl SECONDS]
  flotilla tokens list | flotilla token revoke <id>

common flags: --url URL (env FLOTILLA_URL, default http://127.0.0.1:8080)
              --token TOKEN (env FLOTILLA_TOKEN)
              --json  machine-readable output (the API's JSON as is)
--model DIR is what model.save('file://DIR') or the TensorFlow.js converter writes (model.json
plus weight shards): checked here, then streamed as a tar (no size ceiling but the server's
--max-upload-bytes) into a new version of the model, which the task starts from.
--weights FILE is the flat little-endian float32 vector; it is sent base64-encoded.
For a self-signed TLS certificate, trust it with NODE_EXTRA_CA_CERTS=cert.pem.
exit status: 0 ok, 1 the API refused (CODE: message on stderr), 2 usage error.`;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}


const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
  preset: { type: 'string' },
  spec: { type: 'string' },
  weights: { type: 'string' },
  model: { type: 'string' },
  'from-version': { type: 'string' },
  plan: { type: 'string' },
  'model-name': { type: 'string' },
  start: { type: 'boolean', default: false },
  limit: { type: 'string' },
  offset: { type: 'string' },
  task: { type: 'string' },
  state: { type: 'string' },
  role: { type: 'string' },
  endpoints: { type: 'string' },
  name: { type: 'string' },
  ttl: { type: 'string' },
  student: { type: 'string' },
  data: { type: 'string' },
  temperature: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  alpha: { type: 'string' },
  holdout: { type: 'string' },
  'learning-rate': { type: 'string' },
  rows: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const enc = encodeURIComponent;

function numFlag(v: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < min || x > max) throw new UsageError(`--${name} must be a number in [${min}, ${max}]`);
  return x;
}

function intFlag(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer`);
  return Number(v);
}

function jsonArg(v: string, what: string): unknown {
  const text = v.startsWith('@') ? readFileSync(v.slice(1), 'utf8') : v;
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON`);
  }
}

function page(limit?: number, offset?: number): string {
  const q = new URLSearchParams();
  if (limit !== undefined) q.set('limit', String(limit));
  if (offset !== undefined) q.set('offset', String(offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * Run one operator command. Returns the exit status; never calls process.exit (tests run it in
 * process against a real server).
 */
export async function runAdminCli(argv: string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr(`flotilla: ${(err as Error).message}\n${ADMIN_USAGE}\n`);
    return 2;
  }
  const { values: f, positionals: pos } = parsed;
  if (f.help || pos.length === 0) {
    io.stdout(`${ADMIN_USAGE}\n`);
    return f.help ? 0 : 2;
  }
  const api = new ApiClient(f.url ?? env.FLOTILLA_URL ?? 'http://127.0.0.1:8080', f.token ?? env.FLOTILLA_TOKEN);
  const out = (data: unknown, human: () => string) => io.stdout(f.json ? `${JSON.stringify(data, null, 2)}\n` : human());
  const [group, verb, ...args] = pos;
  const need = (n: number, usage: string) => {
    if (args.length !== n) throw new UsageError(`usage: flotilla ${usage}`);
  };
  const taskLine = (t: any) => `task ${t.id}: ${t.state}${t.stateReason ? ` (${t.stateReason})` : ''}, version ${t.currentVersion}, next round ${t.nextRound}\n`;

  try {
    switch (`${group} ${verb ?? ''}`.trim()) {
      case 'tasks list': {
        need(0, 'tasks list');
        const r = await api.call('GET', '/api/v1/tasks');
        out(r, () => table(r.tasks.map((t: any) => ({ ...t, clientsPerRound: t.plan.clientsPerRound, strategy: t.plan.strategy?.name })), ['id', 'state', 'modelName', 'currentVersion', 'nextRound', 'connectedDevices', 'clientsPerRound', 'strategy']));
        return 0;
      }
      case 'tasks create': {
        need(1, 'tasks create <id> (--preset NAME | --model DIR | --from-version M@V | --spec FILE --weights FILE) [--plan JSON|@FILE]');
        const body: Record<string, unknown> = { id: args[0], plan: f.plan ? jsonArg(f.plan, '--plan') : { clientsPerRound: 1 }, start: f.start };
        if (f['model-name']) body.modelName = f['model-name'];
        if ([f.preset, f.model, f['from-version'], f.spec ?? f.weights].filter((x) => x !== undefined).length !== 1 || (f.spec === undefined) !== (f.weights === undefined)) {
          throw new UsageError('give one of --preset NAME, --model DIR, --from-version MODEL@VERSION, or --spec FILE with --weights FILE');
        }
        if (f.preset) body.preset = f.preset;
        if (f['from-version']) body.fromVersion = f['from-version'];
        if (f.spec) body.spec = jsonArg(`@${f.spec}`, '--spec');
        if (f.weights) body.weights = readFileSync(f.weights).toString('base64');
        if (f.model) {
          // Refuse a bad model or plan (or an existing task) before uploading anything.
          await checkModelDir(f.model, body.plan);
          const exists = await api.call('GET', `/api/v1/tasks/${enc(args[0])}`).then(() => true, (e) => (e instanceof ApiError && e.status === 404 ? false : Promise.reject(e)));
          if (exists) throw new ApiError(409, 'FL_ERR_TASK_EXISTS', 'A task with this name already exists', { task: args[0] });
          const v = await uploadModelDir(api, f['model-name'] ?? args[0], f.model);
          if (!f.json) io.stderr(`uploaded ${f.model} as ${v.model} version ${v.version} (${v.artifacts[0]?.size ?? 0} bytes of weights)\n`);
          body.fromVersion = `${v.model}@${v.version}`;
        }
        const t = await api.call('POST', '/api/v1/tasks', body);
        out(t, () => `created ${taskLine(t)}`);
        return 0;
      }
      case 'tasks start':
      case 'tasks pause':
      case 'tasks resume':
      case 'tasks stop': {
        need(1, `tasks ${verb} <id>`);
        const t = await api.call('POST', `/api/v1/tasks/${enc(args[0])}/${verb}`);
        out(t, () => taskLine(t));
        return 0;
      }
      case 'rounds list': {
        need(1, 'rounds list <task> [--limit N] [--offset N]');
        const r = await api.call('GET', `/api/v1/tasks/${enc(args[0])}/rounds${page(intFlag(f.limit, 'limit'), intFlag(f.offset, 'offset'))}`);
        out(r, () =>
          table(
            r.rounds.map((x: any) => ({ ...x, started: time(x.startedAt), seconds: x.durationMs === null ? null : x.durationMs / 1000, loss: x.trainMetrics?.loss, accuracy: x.centralMetrics?.accuracy })),
            ['round', 'state', 'selected', 'reported', 'rejected', 'dropped', 'committedVersion', 'seconds', 'loss', 'accuracy', 'started'],
          ),
        );
        return 0;
      }
      case 'models list': {
        need(0, 'models list');
        const r = await api.call('GET', '/api/v1/models');
        out(r, () => table(r.models.map((m: any) => ({ ...m, created: time(m.createdAt) })), ['name', 'latestVersion', 'created', 'description']));
        return 0;
      }
      case 'models versions': {
        need(1, 'models versions <model> [--limit N] [--offset N]');
        const r = await api.call('GET', `/api/v1/models/${enc(args[0])}/versions${page(intFlag(f.limit, 'limit'), intFlag(f.offset, 'offset'))}`);
        out(r, () =>
          table(
            r.versions.map((v: any) => ({ ...v, created: time(v.createdAt), accuracy: v.metrics?.accuracy, tags: (v.tags ?? []).join(',') || null })),
            ['version', 'round', 'parentVersion', 'accuracy', 'tags', 'archived', 'created'],
          ),
        );
        return 0;
      }
      case 'models import': {
        need(2, 'models import <model> DIR|FILE.onnx');
        if ((await stat(args[1]).catch(() => null))?.isFile()) {
          const v = await uploadOnnxFile(api, args[0], args[1]);
          out(v, () => `${v.model} version ${v.version}: ONNX opset ${v.onnx.opset}, inputs ${v.onnx.inputs.map((t) => t.name).join(', ')}, outputs ${v.onnx.outputs.map((t) => t.name).join(', ')}\n`);
          return 0;
        }
        await checkModelDir(args[1], undefined, 'serve');
        const v = await uploadModelDir(api, args[0], args[1]);
        const sig = (v as { signature?: { inputs: Array<{ name: string }>; outputs: Array<{ name: string }> } }).signature;
        out(v, () => `${v.model} version ${v.version}: ${v.artifacts[0]?.size ?? 0} bytes of weights${sig ? `, inputs ${sig.inputs.map((t) => t.name).join(', ')}, outputs ${sig.outputs.map((t) => t.name).join(', ')}` : ''}\n`);
        return 0;
      }
      case 'models distill': {
        need(1, 'models distill <model>@<version|alias> --student PRESET|mlp:H1,H2 --data FILE.csv|central:NAME [--temperature T] [--epochs N] [--alpha A] [--holdout F] [--rows N]');
        const at = args[0].lastIndexOf('@');
        if (at < 1 || at === args[0].length - 1) throw new UsageError('name the teacher as <model>@<version|alias>');
        if (!f.student || !f.data) throw new UsageError('--student and --data are required');
        const r = await distill(api, {
          model: args[0].slice(0, at),
          ref: args[0].slice(at + 1),
          student: f.student,
          data: f.data,
          temperature: numFlag(f.temperature, 'temperature', 4, 0.05, 100),
          epochs: numFlag(f.epochs, 'epochs', 10, 1, 1000),
          batchSize: numFlag(f['batch-size'], 'batch-size', 64, 1, 65536),
          alpha: numFlag(f.alpha, 'alpha', 0, 0, 10),
          holdout: numFlag(f.holdout, 'holdout', 0.2, 0.01, 0.9),
          learningRate: numFlag(f['learning-rate'], 'learning-rate', 0.005, 1e-6, 1),
          ...(f.rows !== undefined ? { rows: Math.max(2, intFlag(f.rows, 'rows')!) } : {}),
          progress: progressBar(io.stderr, 'distilling'),
        });
        const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
        out(r, () =>
          `${r.model} version ${r.version} (${r.teacherFormat}): student stored as variant "distilled" (${r.data}: ${r.trainRows} training rows, ${r.heldOutRows} held out)\n` +
          table(
            [
              { model: 'teacher', ...r.teacher, accuracy: pct(r.teacher.accuracy), agreement: '-', rowMs: r.teacher.latencyMs.row, batch32Ms: r.teacher.latencyMs.batch32 },
              { model: 'student', ...r.student, accuracy: pct(r.student.accuracy), agreement: pct(r.student.agreement), rowMs: r.student.latencyMs.row, batch32Ms: r.student.latencyMs.batch32 },
            ],
            ['model', 'parameters', 'bytes', 'accuracy', 'agreement', 'rowMs', 'batch32Ms'],
          ),
        );
        return 0;
      }
      case 'models lineage': {
        need(2, 'models lineage <model> <version|alias>');
        const r = await api.call('GET', `/api/v1/models/${enc(args[0])}/versions/${enc(args[1])}/lineage`);
        out(r, () => table(r.lineage.map((e: any) => ({ ...e, tags: (e.tags ?? []).join(',') || null, created: time(e.createdAt) })), ['model', 'version', 'taskId', 'round', 'tags', 'created']));
        return 0;
      }
      case 'alias set': {
        need(3, 'alias set <model> <alias> <version>');
        const version = /^\d+$/.test(args[2]) ? Number(args[2]) : args[2];
        const a = await api.call('PUT', `/api/v1/models/${enc(args[0])}/aliases/${enc(args[1])}`, { version });
        out(a, () => `${a.model}@${a.alias} -> version ${a.version}\n`);
        return 0;
      }
      case 'clients list': {
        need(0, 'clients list [--task T] [--state S]');
        const q = new URLSearchParams();
        if (f.task) q.set('taskId', f.task);
        if (f.state) q.set('state', f.state);
        if (f.limit) q.set('limit', String(intFlag(f.limit, 'limit')));
        const r = await api.call('GET', `/api/v1/clients${q.size ? `?${q}` : ''}`);
        out(r, () => table(r.clients.map((c: any) => ({ ...c, lastSeen: time(c.lastSeen) })), ['id', 'taskId', 'state', 'roundsJoined', 'reportsAccepted', 'reportsRejected', 'lastSeen']));
        return 0;
      }
      case 'clients revoke': {
        need(1, 'clients revoke <id>');
        const c = await api.call('POST', `/api/v1/clients/${enc(args[0])}/revoke`);
        out(c, () => `client ${c.id} revoked\n`);
        return 0;
      }
      case 'token create': {
        need(0, 'token create --role admin|viewer|device|inference|serving [--task T] [--endpoints A,B] [--name N] [--ttl SECONDS]');
        if (!f.role) throw new UsageError('--role is required');
        const body: Record<string, unknown> = { role: f.role };
        if (f.task) body.taskId = f.task;
        if (f.endpoints) body.endpoints = f.endpoints.split(',').filter((e) => e.length > 0);
        if (f.name) body.name = f.name;
        const ttl = intFlag(f.ttl, 'ttl');
        if (ttl !== undefined) body.ttlSeconds = ttl;
        const t = await api.call('POST', '/api/v1/tokens', body);
        out(t, () => `${t.token}\n`);
        if (!f.json) io.stderr(`token ${t.id} (${t.role}${t.taskId ? `, task ${t.taskId}` : ''}${t.endpoints ? `, endpoints ${t.endpoints.join(',')}` : ''}${t.expiresAt ? `, expires ${time(t.expiresAt)}` : ''}): shown once, store it now\n`);
        return 0;
      }
      case 'tokens list': {
        need(0, 'tokens list');
        const r = await api.call('GET', '/api/v1/tokens');
        out(r, () => table(r.tokens.map((t: any) => ({ ...t, created: time(t.createdAt), expires: time(t.expiresAt) })), ['id', 'role', 'taskId', 'name', 'revoked', 'created', 'expires']));
        return 0;
      }
      case 'token revoke': {
        need(1, 'token revoke <id>');
        const t = await api.call('POST', `/api/v1/tokens/${enc(args[0])}/revoke`);
        out(t, () => `token ${t.id} revoked; ${t.disconnectedSessions} session(s) disconnected\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command: ${pos.join(' ')}`);
    }
  } catch (thrown) {
    // Local checks and local computation (distill) raise the server's coded errors directly.
    const err = asApiError(thrown);
    if (err instanceof UsageError) {
      io.stderr(`flotilla: ${err.message}\n`);
      return 2;
    }
    if (err instanceof ApiError) {
      if (f.json) io.stderr(`${JSON.stringify({ error: { code: err.code, message: err.message, details: err.details } })}\n`);
      else io.stderr(`flotilla: ${err.code}: ${err.message}${err.details !== undefined ? ` ${JSON.stringify(err.details).slice(0, 500)}` : ''}\n`);
      return 1;
    }
    throw err;
  }
}
