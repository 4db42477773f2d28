import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdminCli } from '../../server/src/cli/admin-cli.js';
import { adminApp, ADMIN, type AdminHarness } from './admin-helpers.js';

const run = promisify(execFile);

/** The operator CLI against a real server on port 0: tables for people, --json for scripts, coded errors. */
describe('flotilla operator CLI', () => {
  let h: AdminHarness;
  let url: string;
  beforeAll(async () => {
    h = await adminApp();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await h.app.close();
  });

  async function cli(args: string[], env: NodeJS.ProcessEnv = { FLOTILLA_URL: url, FLOTILLA_TOKEN: ADMIN }) {
    let stdout = '';
    let stderr = '';
    const code = await runAdminCli(args, env, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    return { code, stdout, stderr };
  }

  it('creates, lists and drives tasks', async () => {
    const made = await cli(['tasks', 'create', 'c1', '--preset', 'tiny-mlp', '--plan', '{"clientsPerRound":2,"maxRounds":5}']);
    expect(made).toMatchObject({ code: 0, stderr: '' });
    expect(made.stdout).toMatch(/created task c1: created, version 1/);
    const list = await cli(['tasks', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+STATE\s+MODELNAME/);
    expect(list.stdout).toMatch(/^c1\s+created\s+c1\s+1\s+1\s+0\s+2\s+fedavg$/m);
    const json = await cli(['tasks', 'list', '--json']);
    expect(JSON.parse(json.stdout).tasks.map((t: any) => t.id).sort()).toEqual(['c1', 't1']);
    expect((await cli(['tasks', 'start', 'c1'])).stdout).toMatch(/task c1: running/);
    expect((await cli(['tasks', 'pause', 'c1'])).stdout).toMatch(/task c1: paused/);
    expect((await cli(['tasks', 'resume', 'c1', '--json'])).stdout).toMatch(/"state": "running"/);
    expect((await cli(['tasks', 'stop', 'c1'])).stdout).toMatch(/task c1: stopped/);
    const again = await cli(['tasks', 'stop', 'c1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/FL_ERR_TASK_INVALID_STATE/);
  });

  it('creates a task from a spec file and a raw float32 weights file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
    const spec = (await h.app.flotilla.store.getTask('t1'))!.spec;
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    writeFileSync(join(dir, 'w.bin'), Buffer.from(new Float32Array(195).fill(0.5).buffer));
    writeFileSync(join(dir, 'plan.json'), '{"clientsPerRound":1}');
    const r = await cli(['tasks', 'create', 'c2', '--spec', join(dir, 'spec.json'), '--weights', join(dir, 'w.bin'), '--plan', `@${join(dir, 'plan.json')}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: 'c2', parameters: 195 });
    expect(h.app.flotilla.coordinator.getRunner('c2').globalWeights[7]).toBe(0.5);
  });

  it('lists rounds, models and versions, and sets an alias', async () => {
    expect((await cli(['rounds', 'list', 't1'])).stdout).toBe('(none)\n');
    const models = await cli(['models', 'list']);
    expect(models.stdout).toMatch(/^t1\s+1\s/m);
    const versions = await cli(['models', 'versions', 't1', '--json']);
    expect(JSON.parse(versions.stdout).versions[0].version).toBe(1);
    expect((await cli(['models', 'versions', 't1'])).stdout).toMatch(/^VERSION\s+ROUND/);
    const alias = await cli(['alias', 'set', 't1', 'production', '1']);
    expect(alias).toMatchObject({ code: 0, stdout: 't1@production -> version 1\n' });
    expect((await h.app.flotilla.store.getAlias('t1', 'production'))?.version).toBe(1);
    expect((await cli(['alias', 'set', 't1', 'production', '9'])).stderr).toMatch(/FL_ERR_VERSION_NOT_FOUND/);
  });

  it('creates tokens, lists and revokes clients', async () => {
    const tok = await cli(['token', 'create', '--role', 'device', '--task', 't1', '--name', 'lab', '--ttl', '600']);
    expect(tok.code).toBe(0);
    expect(tok.stdout).toMatch(/^flt\.\S+\n$/);
    expect(tok.stderr).toMatch(/shown once/);
    const inf = await cli(['token', 'create', '--role', 'inference', '--endpoints', 'prod,canary']);
    expect(inf.code).toBe(0);
    expect(inf.stderr).toMatch(/inference, endpoints prod,canary/);
    const viewer = JSON.parse((await cli(['token', 'create', '--role', 'viewer', '--json'])).stdout);
    // A viewer may list but not change.
    const asViewer = { FLOTILLA_URL: url, FLOTILLA_TOKEN: viewer.token };
    expect((await cli(['tasks', 'list'], asViewer)).code).toBe(0);
    const denied = await cli(['tasks', 'start', 't1'], asViewer);
    expect(denied).toMatchObject({ code: 1 });
    expect(denied.stderr).toMatch(/FL_ERR_AUTH_FORBIDDEN/);
    expect((await cli(['tokens', 'list'])).stdout).toMatch(/device\s+t1\s+lab/);
    await h.app.flotilla.store.upsertClient({ id: 'phone-1', taskId: 't1', firstSeen: 1, lastSeen: 2, roundsJoined: 0, reportsAccepted: 0, reportsRejected: 0, revoked: false });
    expect((await cli(['clients', 'list', '--task', 't1'])).stdout).toMatch(/^phone-1\s+t1\s+disconnected/m);
    expect((await cli(['clients', 'revoke', 'phone-1'])).stdout).toBe('client phone-1 revoked\n');
    expect(JSON.parse((await cli(['clients', 'list', '--state', 'revoked', '--json'])).stdout).clients.map((c: any) => c.id)).toEqual(['phone-1']);
    const revoked = await cli(['token', 'revoke', viewer.id]);
    expect(revoked.stdout, revoked.stderr).toMatch(/revoked/);
    expect((await cli(['tasks', 'list'], asViewer)).stderr).toMatch(/FL_ERR_AUTH_INVALID_TOKEN/);
  });

  it('reports usage errors with status 2 and transport errors with a code', async () => {
    expect((await cli(['tasks'])).code).toBe(2);
    expect((await cli(['tasks', 'explode'])).code).toBe(2);
    expect((await cli(['tasks', 'list', '--bogus'])).code).toBe(2);
    expect((await cli(['rounds', 'list', 't1', '--limit', 'many'])).code).toBe(2);
    expect((await cli(['token', 'create'])).code).toBe(2);
    const none = await cli(['tasks', 'list'], { FLOTILLA_URL: url });
    expect(none.stderr).toMatch(/FL_ERR_AUTH_REQUIRED/);
    const json = await cli(['tasks', 'list', '--json'], { FLOTILLA_URL: url, FLOTILLA_TOKEN: 'nope' });
    expect(JSON.parse(json.stderr).error.code).toBe('FL_ERR_AUTH_INVALID_TOKEN');
    const down = await cli(['tasks', 'list', '--url', 'http://127.0.0.1:1', '--token', ADMIN]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/FL_ERR_CLI_UNREACHABLE/);
  });

  it('is wired into the flotilla binary', async () => {
    const bin = new URL('../../scripts/dev/flotilla.mjs', import.meta.url).pathname;
    const { stdout } = await run(process.execPath, [bin, 'tasks', 'list', '--json', '--url', url], { env: { ...process.env, FLOTILLA_TOKEN: ADMIN } });
    expect(JSON.parse(stdout).tasks.length).toBeGreaterThanOrEqual(2);
    const bad = await run(process.execPath, [bin, 'tasks', 'start', 'nope', '--url', url, '--token', ADMIN]).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/FL_ERR_TASK_NOT_FOUND/);
  });
});
