import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Registry } from '../../server/src/registry/registry.js';
import { FileBlobStore } from '../../server/src/store/file-blob-store.js';
import { MemoryBlobStore } from '../../server/src/store/memory-blob-store.js';
import { MemoryStore } from '../../server/src/store/memory-store.js';
import { SqliteStore } from '../../server/src/store/sqlite-store.js';
import type { BlobStore } from '../../server/src/store/blob-store.js';
import type { Store } from '../../server/src/store/store.js';
import { expectCode, round, task } from '../store/fixtures.js';
import { tempDir } from '../store/temp-dir.js';
import { linearModel } from './linear-model.js';

interface Backend {
  name: string;
  open(): Promise<{ store: Store; blobs: BlobStore; dir?: string; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'memory',
    open: async () => ({ store: new MemoryStore(), blobs: new MemoryBlobStore(), cleanup: async () => {} }),
  },
  {
    name: 'sqlite + files',
    open: async () => {
      const t = await tempDir();
      return { store: new SqliteStore({ dataDir: t.dir }), blobs: new FileBlobStore(t.dir), dir: t.dir, cleanup: t.remove };
    },
  },
];

for (const backend of backends) {
  describe(`Registry over ${backend.name}`, () => {
    let env: Awaited<ReturnType<Backend['open']>>;
    let reg: Registry;
    const lin = linearModel(16, 4);

    beforeEach(async () => {
      env = await backend.open();
      await env.store.init();
      reg = new Registry(env.store, env.blobs, { evaluator: (w) => lin.evaluate(w), sparsity: 0.6 });
    });
    afterEach(async () => {
      await env.store.close();
      await env.cleanup();
    });

    it('publishes versions 1, 2, 3 with weights, variants and their central accuracy beside the float32 one', async () => {
      const v1 = await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights, tags: ['baseline'], description: 'first' }, 'alice');
      expect(v1).toMatchObject({ model: 'lin', version: 1, tags: ['baseline'], description: 'first', archived: false });
      expect(v1.parentVersion).toBeUndefined();
      expect(v1.artifacts.map((a) => a.name)).toEqual(['weights', 'weights.float16', 'weights.int8', 'weights.pruned']);
      const size = Object.fromEntries(v1.artifacts.map((a) => [a.name, a.size]));
      expect(size['weights.float16']).toBe(size.weights / 2);
      expect(v1.metrics.accuracy).toBe(1);
      for (const k of ['float16_accuracy', 'int8_accuracy', 'pruned_accuracy', 'float16_loss', 'int8_loss', 'pruned_loss']) {
        expect(v1.metrics[k], k).toBeGreaterThanOrEqual(0);
      }
      expect(v1.metrics.float16_accuracy).toBeGreaterThan(0.95);
      expect(v1.metrics.pruned_accuracy).toBeLessThan(v1.metrics.accuracy);
      expect(v1.metrics.pruned_sparsity).toBeCloseTo(Math.floor(0.6 * 64) / 68, 9);

      const v2 = await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights.map((x) => x * 2), metrics: { accuracy: 0.5 } });
      expect(v2).toMatchObject({ version: 2, parentVersion: 1 });
      expect(v2.metrics.accuracy).toBe(0.5); // given metrics win; the float32 weights were not re-evaluated
      expect((await env.store.getVersion('lin', 2))!.artifacts).toEqual(v2.artifacts);
      expect((await reg.resolve('lin', 'latest')).record.version).toBe(2);
      expect((await reg.listModels()).map((m) => [m.name, m.latestVersion])).toEqual([['lin', 2]]);
      // Reading back verifies checksums and decodes variants.
      expect(await reg.readWeights(v1)).toEqual(lin.weights);
      const f16 = await reg.readWeights(v1, 'float16');
      expect(Math.max(...f16.map((x, i) => Math.abs(x - lin.weights[i])))).toBeLessThan(1e-3);
    });

    it('publishes without variants or evaluator when configured so', async () => {
      const plain = new Registry(env.store, env.blobs, { variants: [] });
      const v = await plain.publish({ model: 'p', spec: lin.spec, weights: lin.weights });
      expect(v.artifacts.map((a) => a.name)).toEqual(['weights']);
      expect(v.metrics).toEqual({});
      await expectCode(plain.readWeights(v, 'int8'), 'FL_ERR_VARIANT_NOT_FOUND');
    });

    it('rejects weights that do not fit the spec, or are not finite, before writing anything', async () => {
      await expectCode(reg.publish({ model: 'x', spec: lin.spec, weights: new Float32Array(3) }), 'FL_ERR_TENSOR_BAD_MANIFEST');
      const bad = lin.weights.slice();
      bad[5] = NaN;
      await expectCode(reg.publish({ model: 'x', spec: lin.spec, weights: bad }), 'FL_ERR_REPORT_NON_FINITE');
      expect(await env.store.getModel('x')).toBeNull();
    });

    it('commits a round through the registry: blobs first, then one transaction with the version', async () => {
      const first = await reg.prepareVersion({ model: 'lin', version: 1, spec: lin.spec, weights: lin.weights });
      await env.store.createTask(task('lin', { spec: lin.spec }), first);
      const v2 = await reg.commitRound({
        task: { id: 'lin', currentVersion: 2, nextRound: 2 },
        round: round('lin', 1, { state: 'done', committedVersion: 2 }),
        version: { model: 'lin', version: 2, spec: lin.spec, weights: lin.weights, taskId: 'lin', round: 1, parentVersion: 1, metrics: { participants: 3 } },
        by: 'coordinator',
      });
      expect(v2.metrics).toMatchObject({ participants: 3, accuracy: 1 });
      expect((await env.store.getTask('lin'))!.currentVersion).toBe(2);
      // Re-committing the same version number fails and changes nothing.
      await expectCode(
        reg.commitRound({
          task: { id: 'lin', currentVersion: 2, nextRound: 3 },
          round: round('lin', 2),
          version: { model: 'lin', version: 2, spec: lin.spec, weights: lin.weights.map((x) => -x) },
          by: 'coordinator',
        }),
        'FL_ERR_VERSION_IMMUTABLE',
      );
      expect(await reg.readWeights(await reg.getVersion('lin', 2))).toEqual(lin.weights);
    });

    it('leaves no visible version when publishing fails after the blobs were written', async () => {
      const failing = new Registry(env.store, env.blobs, {
        evaluator: async (w) => {
          if (w.some((x) => x === 0)) throw new Error('evaluator crashed');
          return { accuracy: 1 };
        },
      });
      await expect(failing.publish({ model: 'half', spec: lin.spec, weights: lin.weights })).rejects.toThrow('evaluator crashed');
      expect(await env.store.getModel('half')).toBeNull();
      expect(await env.store.listVersions('half', { includeArchived: true })).toEqual([]);
      // The blobs it wrote are there, unreferenced; the next publish reuses them.
      const ok = await reg.publish({ model: 'half', spec: lin.spec, weights: lin.weights });
      expect(ok.version).toBe(1);
    });

    it('resolves versions and aliases, with the right codes for unknown or malformed references', async () => {
      await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights });
      await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights });
      expect((await reg.resolve('lin', '1')).record.version).toBe(1);
      expect((await reg.resolve('lin', 2)).alias).toBeUndefined();
      expect(await reg.resolve('lin', 'latest')).toMatchObject({ alias: 'latest', record: { version: 2 } });
      await expectCode(reg.resolve('nope', '1'), 'FL_ERR_MODEL_NOT_FOUND');
      await expectCode(reg.resolve('nope', 'latest'), 'FL_ERR_MODEL_NOT_FOUND');
      await expectCode(reg.resolve('lin', '9'), 'FL_ERR_VERSION_NOT_FOUND');
      await expectCode(reg.resolve('lin', 'production'), 'FL_ERR_ALIAS_NOT_FOUND');
      await expectCode(reg.resolve('lin', 'Bad Alias!'), 'FL_ERR_ALIAS_INVALID');
      await expectCode(reg.listVersions('nope'), 'FL_ERR_MODEL_NOT_FOUND');
    });

    it('sets, moves, deletes and rolls back aliases in one call each, with history', async () => {
      for (let i = 0; i < 4; i++) await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights });
      await reg.setAlias('lin', 'production', 1, 'alice');
      await reg.setAlias('lin', 'production', '2', 'bob');
      await reg.setAlias('lin', 'staging', 'production', 'bob');
      await reg.setAlias('lin', 'production', 4, 'carol');
      expect((await reg.rollbackAlias('lin', 'production', 'dave')).version).toBe(2);
      expect((await reg.rollbackAlias('lin', 'production', 'dave')).version).toBe(1);
      await expectCode(reg.rollbackAlias('lin', 'production', 'dave'), 'FL_ERR_ALIAS_NO_PREVIOUS');
      expect((await reg.resolve('lin', 'staging')).record.version).toBe(2);
      await reg.deleteAlias('lin', 'staging', 'erin');
      await expectCode(reg.resolve('lin', 'staging'), 'FL_ERR_ALIAS_NOT_FOUND');
      expect((await reg.rollbackAlias('lin', 'staging', 'erin')).version).toBe(2);
      const hist = await reg.aliasHistory('lin', 'production');
      expect(hist.map((h) => [h.from, h.to, h.action, h.by])).toEqual([
        [2, 1, 'rollback', 'dave'],
        [4, 2, 'rollback', 'dave'],
        [2, 4, 'set', 'carol'],
        [1, 2, 'set', 'bob'],
        [null, 1, 'set', 'alice'],
      ]);
      for (const bad of ['latest', 'Prod', '1abc', 'a'.repeat(64), '', 'x y']) {
        await expectCode(reg.setAlias('lin', bad, 1, 'x'), 'FL_ERR_ALIAS_INVALID');
      }
      await expectCode(reg.deleteAlias('lin', 'latest', 'x'), 'FL_ERR_ALIAS_INVALID');
      await expectCode(reg.rollbackAlias('lin', 'latest', 'x'), 'FL_ERR_ALIAS_INVALID');
      await expectCode(reg.setAlias('lin', 'canary', 99, 'x'), 'FL_ERR_VERSION_NOT_FOUND');
      expect((await reg.listAliases('lin')).map((a) => a.alias)).toEqual(['latest', 'production', 'staging']);
      expect(await reg.setAlias('lin', 'a'.repeat(63), 1, 'x')).toMatchObject({ version: 1 });
    });

    it('archives a version: hidden from listings, still readable and aliasable', async () => {
      for (let i = 0; i < 3; i++) await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights, tags: i === 1 ? ['good'] : [] });
      const archived = await reg.archive('lin', 2);
      expect(archived.archived).toBe(true);
      expect((await reg.listVersions('lin')).map((v) => v.version)).toEqual([3, 1]);
      expect((await reg.listVersions('lin', { includeArchived: true, tag: 'good' })).map((v) => v.version)).toEqual([2]);
      expect(await reg.readWeights(await reg.getVersion('lin', 2))).toEqual(lin.weights);
      await reg.archive('lin', 2, false);
      expect((await reg.listVersions('lin')).map((v) => v.version)).toEqual([3, 2, 1]);
      await expectCode(reg.archive('lin', 7), 'FL_ERR_VERSION_NOT_FOUND');
    });

    it('serves tfjs weights per variant: stored bytes for float32/float16, decoded float32 for int8/pruned', async () => {
      const v = await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights });
      const n = lin.weights.length;
      expect((await reg.tfjsWeights(v)).bytes.byteLength).toBe(4 * n);
      expect((await reg.tfjsWeights(v, 'float16')).bytes.byteLength).toBe(2 * n);
      const int8 = await reg.tfjsWeights(v, 'int8');
      expect(int8.bytes.byteLength).toBe(4 * n);
      expect(int8.etag).toMatch(/\.f32"$/);
      expect((await reg.tfjsWeights(v, 'int8')).bytes).toBe(int8.bytes); // cached
      const mj = await reg.modelJson(v, 'weights.bin?variant=float16', 'float16');
      expect(mj.json.weightsManifest[0].weights[0]).toMatchObject({ name: 'dense/kernel', dtype: 'float32', quantization: { dtype: 'float16' } });
      expect((await reg.modelJson(v, 'weights.bin')).etag).not.toBe(mj.etag);
    });

    it('keeps verified artifacts in memory and hands out weights the caller may modify', async () => {
      const v = await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights });
      const a = await reg.readWeights(v);
      a.fill(0);
      const b = await reg.readWeights(v);
      expect(b).toEqual(lin.weights);
      expect((await reg.readArtifact(v, 'weights')).bytes).toBe((await reg.readArtifact(v, 'weights')).bytes);
      const uncached = new Registry(env.store, env.blobs, { cacheBytes: 0 });
      expect((await uncached.readArtifact(v, 'weights')).bytes).not.toBe((await uncached.readArtifact(v, 'weights')).bytes);
    });

    it('never serves a corrupt artifact', async (ctx) => {
      if (!env.dir) ctx.skip();
      const v = await reg.publish({ model: 'lin', spec: lin.spec, weights: lin.weights });
      const w = v.artifacts.find((a) => a.name === 'weights')!;
      const p = join(env.dir!, 'blobs', w.sha256.slice(0, 2), w.sha256);
      const bytes = await readFile(p);
      bytes[0] ^= 1;
      await writeFile(p, bytes);
      await expectCode(reg.readWeights(v), 'FL_ERR_BLOB_CORRUPT');
      await expectCode(reg.tfjsWeights(v), 'FL_ERR_BLOB_CORRUPT');
    });
  });
}
