import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPreset, specOf } from '@flotilla/model';
import { buildApp, type FlotillaApp } from '../../server/src/app.js';
import { Registry } from '../../server/src/registry/registry.js';
import { tempDir } from '../store/temp-dir.js';
import { linearModel } from './linear-model.js';

const ADMIN = 'admin-token-0123456789abcdef';
const DEVICE = 'device-token-0123456789abcdef';
const auth = (t = ADMIN) => ({ authorization: `Bearer ${t}` });

describe('registry over HTTP (SqliteStore + FileBlobStore, real port)', () => {
  let app: FlotillaApp;
  let url: string;
  let dir: { dir: string; remove: () => Promise<void> };
  let reg: Registry;
  const lin = linearModel(16, 4);
  let tiny: { spec: ReturnType<typeof specOf>['spec']; weights: Float32Array; model: tf.LayersModel };

  beforeAll(async () => {
    await tf.setBackend('cpu');
    dir = await tempDir();
    app = await buildApp({ dataDir: dir.dir, adminToken: ADMIN, deviceToken: DEVICE });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    reg = new Registry(app.flotilla.store, app.flotilla.blobs, { evaluator: (w) => lin.evaluate(w) });
    for (let i = 0; i < 5; i++) await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights.map((x) => x * (1 + i / 10)), tags: i % 2 ? ['odd'] : [] });
    const preset = buildPreset('tiny-mlp');
    const { spec, weights } = specOf(preset.model, preset.numClasses);
    tiny = { spec, weights, model: preset.model };
    await reg.publish({ model: 'tiny', spec, weights });
  });
  afterAll(async () => {
    await app.close();
    tiny.model.dispose();
    await dir.remove();
  });

  const get = (path: string, headers: Record<string, string> = auth()) => fetch(`${url}${path}`, { headers, redirect: 'manual' });
  const send = (method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: { ...auth(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('lists models and versions newest first, paged, filtered by tag and alias', async () => {
    const models = await (await get('/api/v1/models')).json();
    expect(models.models.map((m: { name: string; latestVersion: number }) => [m.name, m.latestVersion])).toEqual([
      ['lin', 5],
      ['tiny', 1],
    ]);
    const p1 = await (await get('/api/v1/models/lin/versions?limit=2')).json();
    expect(p1.versions.map((v: { version: number }) => v.version)).toEqual([5, 4]);
    expect(p1.nextOffset).toBe(2);
    expect(p1.versions[0].spec).toBeUndefined();
    expect(p1.versions[0].metrics.int8_accuracy).toBeGreaterThan(0);
    const p3 = await (await get('/api/v1/models/lin/versions?limit=2&offset=4')).json();
    expect(p3.versions.map((v: { version: number }) => v.version)).toEqual([1]);
    expect(p3.nextOffset).toBeNull();
    const odd = await (await get('/api/v1/models/lin/versions?tag=odd')).json();
    expect(odd.versions.map((v: { version: number }) => v.version)).toEqual([4, 2]);
    const latest = await (await get('/api/v1/models/lin/versions?alias=latest')).json();
    expect(latest.versions.map((v: { version: number }) => v.version)).toEqual([5]);
    const one = await (await get('/api/v1/models/lin/versions/3')).json();
    expect(one).toMatchObject({ model: 'lin', version: 3, parentVersion: 2, aliases: [] });
    expect(one.spec.manifest).toHaveLength(2);
    expect((await get('/api/v1/models/lin/versions?limit=0')).status).toBe(400);
  });

  it('answers unknown models, versions and aliases with 404 codes, bad alias names with 400, no token with 401', async () => {
    const code = async (r: Response) => [r.status, (await r.json()).error.code];
    expect(await code(await get('/api/v1/models/nope/versions'))).toEqual([404, 'FL_ERR_MODEL_NOT_FOUND']);
    expect(await code(await get('/api/v1/models/nope/versions/1/model.json'))).toEqual([404, 'FL_ERR_MODEL_NOT_FOUND']);
    expect(await code(await get('/api/v1/models/lin/versions/99'))).toEqual([404, 'FL_ERR_VERSION_NOT_FOUND']);
    expect(await code(await get('/api/v1/models/lin/versions/99/weights.bin'))).toEqual([404, 'FL_ERR_VERSION_NOT_FOUND']);
    expect(await code(await get('/api/v1/models/lin/versions/canary/model.json'))).toEqual([404, 'FL_ERR_ALIAS_NOT_FOUND']);
    expect(await code(await get('/api/v1/models/lin/versions/Bad!/model.json'))).toEqual([400, 'FL_ERR_ALIAS_INVALID']);
    expect(await code(await send('PUT', '/api/v1/models/lin/aliases/Prod', { version: 1 }))).toEqual([400, 'FL_ERR_ALIAS_INVALID']);
    expect(await code(await send('PUT', '/api/v1/models/lin/aliases/latest', { version: 1 }))).toEqual([400, 'FL_ERR_ALIAS_INVALID']);
    expect(await code(await get('/api/v1/models/lin/versions/1/artifacts/nope'))).toEqual([404, 'FL_ERR_ARTIFACT_NOT_FOUND']);
    expect(await code(await get('/api/v1/models/lin/versions/1/weights.bin?variant=int4'))).toEqual([400, 'FL_ERR_HTTP_VALIDATION']);
    expect(await code(await get('/api/v1/models', {}))).toEqual([401, 'FL_ERR_AUTH_REQUIRED']);
    expect(await code(await send('PUT', '/api/v1/models/lin/versions/1', {}))).toEqual([409, 'FL_ERR_VERSION_IMMUTABLE']);
    expect(await code(await send('DELETE', '/api/v1/models/lin/versions/1'))).toEqual([409, 'FL_ERR_VERSION_IMMUTABLE']);
    const asDevice = await fetch(`${url}/api/v1/models/lin/aliases/production`, { method: 'PUT', headers: { ...auth(DEVICE), 'content-type': 'application/json' }, body: '{"version":1}' });
    expect(await code(asDevice)).toEqual([403, 'FL_ERR_AUTH_FORBIDDEN']);
  });

  it('serves immutable URLs with a strong ETag, Cache-Control immutable and 304 on If-None-Match', async () => {
    for (const path of ['/api/v1/models/lin/versions/2/model.json', '/api/v1/models/lin/versions/2/weights.bin', '/api/v1/models/lin/versions/2/weights.bin?variant=int8']) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('cache-control')).toContain('immutable');
      const etag = r.headers.get('etag')!;
      expect(etag).toMatch(/^"[0-9a-f.f32]+"$/);
      const again = await get(path, { ...auth(), 'if-none-match': etag });
      expect(again.status).toBe(304);
    }
    const v2 = await (await get('/api/v1/models/lin/versions/2')).json();
    const w = v2.artifacts.find((a: { name: string }) => a.name === 'weights');
    const bytes = new Uint8Array(await (await get('/api/v1/models/lin/versions/2/weights.bin')).arrayBuffer());
    expect(bytes.byteLength).toBe(w.size);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(w.sha256);
    const int8 = v2.artifacts.find((a: { name: string }) => a.name === 'weights.int8');
    const raw = await get('/api/v1/models/lin/versions/2/artifacts/weights.int8');
    expect(raw.headers.get('x-checksum-sha256')).toBe(int8.sha256);
    expect((await raw.arrayBuffer()).byteLength).toBe(int8.size);
  });

  it('answers an alias in {version} with a redirect to the immutable URL, keeping the query', async () => {
    const r = await get('/api/v1/models/lin/versions/latest/model.json?variant=float16');
    expect(r.status).toBe(307);
    expect(r.headers.get('location')).toBe('/api/v1/models/lin/versions/5/model.json?variant=float16');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    const meta = await get('/api/v1/models/lin/versions/latest');
    expect(meta.headers.get('location')).toBe('/api/v1/models/lin/versions/5');
  });

  it('sets, moves, rolls back and deletes aliases, with history', async () => {
    expect((await (await send('PUT', '/api/v1/models/lin/aliases/production', { version: 2 })).json()).version).toBe(2);
    expect((await (await send('PUT', '/api/v1/models/lin/aliases/production', { version: 'latest' })).json()).version).toBe(5);
    expect((await send('PUT', '/api/v1/models/lin/aliases/production', { version: 3, by: 'someone-else' })).status).toBe(400);
    const redirect = await get('/api/v1/models/lin/versions/production/weights.bin');
    expect(redirect.headers.get('location')).toBe('/api/v1/models/lin/versions/5/weights.bin');
    const rb = await send('POST', '/api/v1/models/lin/aliases/production/rollback');
    expect(rb.status).toBe(200);
    expect((await rb.json()).version).toBe(2);
    const noPrev = await send('POST', '/api/v1/models/lin/aliases/production/rollback');
    expect([noPrev.status, (await noPrev.json()).error.code]).toEqual([409, 'FL_ERR_ALIAS_NO_PREVIOUS']);
    const hist = await (await get('/api/v1/models/lin/aliases/production/history')).json();
    expect(hist.history.map((h: { from: number; to: number; action: string }) => [h.from, h.to, h.action])).toEqual([
      [5, 2, 'rollback'],
      [2, 5, 'set'],
      [null, 2, 'set'],
    ]);
    // Recorded with the authenticated actor (here the bootstrap admin token), the same for each change.
    const actors = new Set(hist.history.map((h: { by: string }) => h.by));
    expect(actors.size).toBe(1);
    expect([...actors][0]).not.toBe('anonymous');
    expect((await (await get('/api/v1/models/lin/versions/2')).json()).aliases).toEqual(['production']);
    expect((await send('DELETE', '/api/v1/models/lin/aliases/production')).status).toBe(204);
    expect((await get('/api/v1/models/lin/versions/production/model.json')).status).toBe(404);
    const aliases = await (await get('/api/v1/models/lin/aliases')).json();
    expect(aliases.aliases.map((a: { alias: string }) => a.alias)).toEqual(['latest']);
  });

  it('archives through PATCH: hidden from listings, still served', async () => {
    const r = await send('PATCH', '/api/v1/models/lin/versions/1', { archived: true });
    expect((await r.json()).archived).toBe(true);
    const list = await (await get('/api/v1/models/lin/versions')).json();
    expect(list.versions.map((v: { version: number }) => v.version)).not.toContain(1);
    expect((await get('/api/v1/models/lin/versions/1/weights.bin')).status).toBe(200);
    const bad = await send('PATCH', '/api/v1/models/lin/versions/1', { archived: true, metrics: {} });
    expect(bad.status).toBe(400);
    await send('PATCH', '/api/v1/models/lin/versions/1', { archived: false });
  });

  it('loads with tf.loadLayersModel from the immutable URL, an alias URL and each variant', async () => {
    const requestInit = { headers: auth(DEVICE) };
    const x = tf.randomNormal([5, 8]);
    const expected = (tiny.model.predict(x) as tf.Tensor).arraySync() as number[][];
    const m32 = await tf.loadLayersModel(`${url}/api/v1/models/tiny/versions/1/model.json`, { requestInit });
    expect(m32.predict(x) as tf.Tensor).toBeDefined();
    const got = (m32.predict(x) as tf.Tensor).arraySync() as number[][];
    got.forEach((row, i) => row.forEach((p, j) => expect(p).toBeCloseTo(expected[i][j], 5)));
    const viaAlias = await tf.loadLayersModel(`${url}/api/v1/models/tiny/versions/latest/model.json`, { requestInit });
    expect(viaAlias.getWeights().length).toBe(m32.getWeights().length);
    const record = await reg.getVersion('tiny', 1);
    for (const variant of ['float16', 'int8', 'pruned'] as const) {
      const m = await tf.loadLayersModel(`${url}/api/v1/models/tiny/versions/1/model.json?variant=${variant}`, { requestInit });
      const loaded = new Float32Array(m.getWeights().flatMap((w) => [...(w.dataSync() as Float32Array)]));
      const want = await reg.readWeights(record, variant);
      expect(loaded.length).toBe(want.length);
      let maxErr = 0;
      for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(loaded[i] - want[i]));
      expect(maxErr, variant).toBeLessThan(1e-6);
      m.dispose();
    }
    x.dispose();
    m32.dispose();
    viaAlias.dispose();
  });

  it('never serves a corrupt blob: 500 FL_ERR_BLOB_CORRUPT', async () => {
    const v = await reg.getVersion('lin', 4);
    const w = v.artifacts.find((a) => a.name === 'weights')!;
    const p = join(dir.dir, 'blobs', w.sha256.slice(0, 2), w.sha256);
    const bytes = await readFile(p);
    bytes[3] ^= 0x10;
    await writeFile(p, bytes);
    const r = await get('/api/v1/models/lin/versions/4/weights.bin');
    expect(r.status).toBe(500);
    expect((await r.json()).error.code).toBe('FL_ERR_BLOB_CORRUPT');
  });
});
