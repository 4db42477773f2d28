import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, rowsOf, servingApp, type ServingHarness } from '../serving/serving-helpers.js';
import { flakyProxy, getJson, infer, sendJson, spawnFlotilla, started, until, type Proc } from './edge-helpers.js';

/**
 * `flotilla sidecar` as a real process beside a real coordinator (HTTP on loopback), reached
 * through a proxy the test switches off and on: it follows alias moves, serves its last synced
 * version through an outage (and across its own restart, from the disk cache), resumes after it,
 * refuses a corrupt artifact while the last good version keeps serving, and reports upstream.
 */
describe('flotilla sidecar', () => {
  let h: ServingHarness;
  let coord: string;
  let proxy: Awaited<ReturnType<typeof flakyProxy>>;
  let servingToken: string;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-sidecar-'));
  const procs: Proc[] = [];
  let sidecarToken: { id: string; token: string };
  const sidecar = (extra: string[] = [], cache = join(dir, 'cache')) => {
    const p = spawnFlotilla(['sidecar', '--registry-url', proxy.url, '--model', 'tiny@production', '--port', '0', '--cache-dir', cache, '--sync-interval-ms', '200', '--report-interval-ms', '200', '--payload-sample-rate', '1', ...extra], {
      FLOTILLA_REGISTRY_TOKEN: sidecarToken.token,
    });
    procs.push(p);
    return p;
  };
  const moveAlias = async (version: number) => expect((await sendJson('PUT', `${coord}/api/v1/models/tiny/aliases/production`, { version }, ADMIN)).status).toBe(200);

  beforeAll(async () => {
    h = await servingApp();
    await h.publishTiny('tiny', 4);
    coord = await h.app.listen({ port: 0, host: '127.0.0.1' });
    proxy = await flakyProxy(coord);
    servingToken = (await sendJson('POST', `${coord}/api/v1/tokens`, { role: 'serving', name: 'sidecar' }, ADMIN)).json.token;
    const t = (await sendJson('POST', `${coord}/api/v1/tokens`, { role: 'serving', name: 'sidecar-revoked-later' }, ADMIN)).json;
    sidecarToken = { id: t.id, token: t.token };
    await moveAlias(1);
  });
  afterAll(async () => {
    for (const p of procs) await p.kill();
    await proxy.close();
    await h.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the aliased version on the OIP and TF Serving routes, follows the alias, survives an outage and a restart, resumes', async () => {
    let s = await started(sidecar());
    await s.waitFor(/flotilla ready/);
    expect((await getJson(`${s.url}/readyz`)).status).toBe(200);
    const first = await infer(s.url!, 'tiny', rowsOf(2));
    expect(first.status).toBe(200);
    expect(first.version).toBe('1');
    const direct = await infer(coord, 'tiny', rowsOf(2), { ref: '1', token: ADMIN });
    expect(first.data).toEqual(direct.data);
    const tfs = await sendJson('POST', `${s.url}/v1/models/tiny:predict`, { instances: rowsOf(2) });
    expect(tfs.status).toBe(200);
    expect(tfs.json.predictions.flat()).toEqual(first.data.map((x: number) => expect.closeTo(x, 5)));

    await moveAlias(2);
    await until(async () => (await infer(s.url!, 'tiny', rowsOf(1))).version === '2', 'the sidecar to follow production to v2');

    proxy.mode = 'down';
    await until(async () => (await getJson(`${s.url}/api/v1/edge/status`)).json.mirror.lastError?.code === 'FL_ERR_UPSTREAM_UNREACHABLE', 'the outage to be noticed');
    const during = await infer(s.url!, 'tiny', rowsOf(1));
    expect(during.status).toBe(200);
    expect(during.version).toBe('2');

    // A restart while the registry is away serves the cached version.
    await s.kill();
    s = await started(sidecar());
    await s.waitFor(/flotilla ready/);
    const restarted = await infer(s.url!, 'tiny', rowsOf(1));
    expect(restarted.version).toBe('2');
    expect((await getJson(`${s.url}/api/v1/edge/status`)).json.mirror.restoredFromCache).toBe(1);

    await moveAlias(3);
    proxy.mode = 'up';
    await until(async () => (await infer(s.url!, 'tiny', rowsOf(1))).version === '3', 'the sidecar to resume and follow production to v3');
    expect((await getJson(`${s.url}/api/v1/edge/status`)).json.mirror.lastError).toBeNull();

    // A corrupt artifact is refused; v3 keeps serving until a good copy arrives.
    proxy.mode = 'corrupt';
    await moveAlias(4);
    await until(async () => (await getJson(`${s.url}/api/v1/edge/status`)).json.mirror.lastError?.code === 'FL_ERR_UPSTREAM_CORRUPT', 'the checksum mismatch to be reported');
    expect((await infer(s.url!, 'tiny', rowsOf(1))).version).toBe('3');
    proxy.mode = 'up';
    await until(async () => (await infer(s.url!, 'tiny', rowsOf(1))).version === '4', 'v4 once the registry serves it intact');

    // Latency stats and sampled payloads reached the coordinator.
    const reports = await until(async () => {
      const r = (await getJson(`${coord}/api/v1/edge/reports`, ADMIN)).json.reports;
      return r.find((x: any) => x.kind === 'sidecar' && x.models.some((m: any) => m.requests > 0));
    }, 'a sidecar report with requests');
    expect(reports.synced['tiny@production']).toBeGreaterThanOrEqual(3);
    const payloads = await until(async () => {
      const r = (await getJson(`${coord}/api/v1/models/tiny/payloads`, ADMIN)).json;
      return r.total > 0 ? r : null;
    }, 'sampled payloads upstream');
    expect(payloads.payloads[0].model).toBe('tiny');

    // Its credential revoked: a clear error in its status, and v4 keeps serving.
    expect((await sendJson('POST', `${coord}/api/v1/tokens/${sidecarToken.id}/revoke`, {}, ADMIN)).status).toBe(200);
    await until(async () => (await getJson(`${s.url}/api/v1/edge/status`)).json.mirror.lastError?.code === 'FL_ERR_AUTH_INVALID_TOKEN', 'the revoked credential to be reported');
    expect((await infer(s.url!, 'tiny', rowsOf(1))).version).toBe('4');
  });

  it('exits with a clear error for a model or alias that does not exist (nothing cached)', async () => {
    for (const [model, code] of [
      ['nope@production', 'FL_ERR_MODEL_NOT_FOUND'],
      ['tiny@nope', 'FL_ERR_ALIAS_NOT_FOUND'],
    ]) {
      const p = spawnFlotilla(['sidecar', '--registry-url', coord, '--model', model, '--port', '0', '--cache-dir', join(dir, `empty-${code}`)], { FLOTILLA_REGISTRY_TOKEN: servingToken });
      procs.push(p);
      expect(await p.exited).toBe(1);
      expect(p.err()).toContain(code);
    }
  });

  it('exits with FL_ERR_AUTH_INVALID_TOKEN for a wrong credential', async () => {
    const p = spawnFlotilla(['sidecar', '--registry-url', coord, '--model', 'tiny@production', '--port', '0', '--cache-dir', join(dir, 'empty-auth')], { FLOTILLA_REGISTRY_TOKEN: 'flt.AAAAAAAAAAAA.' + 'A'.repeat(43) });
    procs.push(p);
    expect(await p.exited).toBe(1);
    expect(p.err()).toContain('FL_ERR_AUTH_INVALID_TOKEN');
  });
});
