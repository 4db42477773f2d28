import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpRegistrySource } from '../../server/src/roles/http-registry-source.js';
import { openReadOnlySource } from '../../server/src/roles/read-only-storage.js';
import type { RegistrySource } from '../../server/src/roles/registry-source.js';
import { UpstreamClient } from '../../server/src/roles/upstream-client.js';
import { ADMIN, servingApp, type ServingHarness } from '../serving/serving-helpers.js';

/**
 * One contract suite over every RegistrySource (registry-source.ts): the coordinator over HTTP
 * and the shared SQLite store opened read-only, both over the same published versions.
 */
describe.each(['http', 'store'] as const)('RegistrySource (%s)', (kind) => {
  let h: ServingHarness;
  let source: RegistrySource;
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-source-'));

  beforeAll(async () => {
    h = await servingApp({ store: undefined, blobs: undefined, dataDir });
    await h.publishTiny('tiny', 2);
    await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 1 } });
    await h.call({ method: 'POST', url: '/api/v1/deployments', json: { name: 'tiny-ab', model: 'tiny', routing: { mode: 'split', targets: [{ ref: '1', weight: 1 }, { ref: 'production', weight: 1 }] } } });
    if (kind === 'http') {
      const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
      const token = (await h.call({ method: 'POST', url: '/api/v1/tokens', json: { role: 'serving' } })).json.token;
      source = new HttpRegistrySource(new UpstreamClient(url, token));
    } else source = await openReadOnlySource({ dataDir });
  });
  afterAll(async () => {
    await source.close();
    await h.app.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists models and aliases, and answers null while the aliases are unchanged', async () => {
    expect(await source.listModels()).toEqual(['tiny']);
    const snap = (await source.aliases('tiny'))!;
    expect(Object.fromEntries(snap.aliases.map((a) => [a.alias, a.version]))).toEqual({ latest: 2, production: 1 });
    expect(await source.aliases('tiny', snap.etag)).toBeNull();
    await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 2 } });
    const moved = (await source.aliases('tiny', snap.etag))!;
    expect(moved.aliases.find((a) => a.alias === 'production')!.version).toBe(2);
    await h.call({ method: 'PUT', url: '/api/v1/models/tiny/aliases/production', json: { version: 1 } });
  });

  it('reads version records and artifacts whose bytes match their checksums', async () => {
    const v = await source.version('tiny', 2);
    expect(v).toMatchObject({ model: 'tiny', version: 2 });
    expect(v.spec!.manifest.length).toBeGreaterThan(0);
    expect(v).toEqual(await h.app.flotilla.registry.getVersion('tiny', 2));
    for (const a of v.artifacts) {
      const bytes = await source.artifact(v, a.name);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(a.sha256);
    }
  });

  it('lists deployments', async () => {
    expect((await source.deployments()).map((d) => d.name)).toEqual(['tiny-ab']);
  });

  it('answers the registry codes for what does not exist', async () => {
    await expect(source.aliases('nope')).rejects.toMatchObject({ code: 'FL_ERR_MODEL_NOT_FOUND' });
    await expect(source.version('tiny', 99)).rejects.toMatchObject({ code: 'FL_ERR_VERSION_NOT_FOUND' });
  });
});

describe('HttpRegistrySource errors', () => {
  it('FL_ERR_UPSTREAM_UNREACHABLE for a closed port, FL_ERR_AUTH_INVALID_TOKEN for a bad token', async () => {
    const h = await servingApp();
    const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
    await expect(new HttpRegistrySource(new UpstreamClient(url, 'flt.AAAAAAAAAAAA.' + 'A'.repeat(43))).listModels()).rejects.toMatchObject({ code: 'FL_ERR_AUTH_INVALID_TOKEN' });
    await h.app.close();
    await expect(new HttpRegistrySource(new UpstreamClient(url, ADMIN)).listModels()).rejects.toMatchObject({ code: 'FL_ERR_UPSTREAM_UNREACHABLE' });
  });
});
